# Compiles src/poll_uring.c as on a Linux system whose headers have no
# io_uring (an old libc or kernel-headers package), which no build of ours
# does by itself, and runs the result.
#
#   cmake -DTIDE_SOURCE_DIR=<repo> [-DTIDE_FB_DIR=<scratch dir>]
#         [-DTIDE_FB_CC="gcc;clang"] -P cmake/check_uring_fallback.cmake
#
# A scratch include directory holding an empty <linux/io_uring.h> comes
# first on the include path, so the backend's feature test fails and it
# compiles its "headers without what the backend needs" variant.  For each
# C compiler of TIDE_FB_CC: that variant, with the library's warnings as
# errors, linked with tests/compat/uring_fallback.c, which exits 0 only if
# every entry point returns -ENOSYS (so the variant is the one built).
# Used by the ctest test "uring_fallback".
cmake_minimum_required(VERSION 3.16)

if(NOT TIDE_SOURCE_DIR)
    get_filename_component(TIDE_SOURCE_DIR "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
endif()
if(NOT TIDE_FB_DIR)
    set(TIDE_FB_DIR "${CMAKE_CURRENT_BINARY_DIR}/tide-uring-fallback")
endif()
if(NOT DEFINED TIDE_FB_CC)
    set(TIDE_FB_CC cc)
endif()

file(MAKE_DIRECTORY "${TIDE_FB_DIR}/include/linux")
file(WRITE "${TIDE_FB_DIR}/include/linux/io_uring.h"
     "/* As old headers have it: none of the io_uring definitions. */\n")

set(_failed "")
set(_n 0)
foreach(_cc IN LISTS TIDE_FB_CC)
    math(EXPR _n "${_n} + 1")
    set(_exe "${TIDE_FB_DIR}/uring_fallback_${_n}")
    set(_cmd "${_cc}" -std=c11 -D_GNU_SOURCE= -Wall -Wextra -Werror
             "-I${TIDE_FB_DIR}/include" "-I${TIDE_SOURCE_DIR}/src" "-I${TIDE_SOURCE_DIR}/include"
             "${TIDE_SOURCE_DIR}/src/poll_uring.c" "${TIDE_SOURCE_DIR}/tests/compat/uring_fallback.c"
             -o "${_exe}")
    execute_process(COMMAND ${_cmd} RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _out)
    if(NOT _rc EQUAL 0)
        string(REPLACE ";" " " _line "${_cmd}")
        list(APPEND _failed "compile: ${_line}\n${_out}")
        continue()
    endif()
    execute_process(COMMAND "${_exe}" RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _out)
    if(NOT _rc EQUAL 0)
        list(APPEND _failed "run (${_cc}): ${_exe}\n${_out}")
    else()
        message(STATUS "uring_fallback: ${_cc}: the compiled-out variant builds and returns -ENOSYS")
    endif()
endforeach()

if(_failed)
    string(REPLACE ";" "\n" _msg "${_failed}")
    message(FATAL_ERROR "uring_fallback: failed:\n${_msg}")
endif()
