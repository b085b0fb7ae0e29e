# Compiles every public header strictly, as a user of the library would.
#
#   cmake -DTIDE_SOURCE_DIR=<repo> [-DTIDE_HDR_DIR=<scratch dir>]
#         [-DTIDE_HDR_CC="gcc;clang"] [-DTIDE_HDR_CXX="g++;clang++"]
#         [-DTIDE_HDR_REQUIRE_CXX=ON] -P cmake/check_headers.cmake
#
# For include/tide.h and each include/tide/*.h it writes a translation unit
# whose first line includes that header, plus one that includes them all (in
# reverse order) and uses their macros and prototypes; then it compiles each
# with -fsyntax-only, with every C compiler of TIDE_HDR_CC in the modes
# below and every C++ compiler of TIDE_HDR_CXX as C++.  No mode defines a
# feature-test macro except "posix", which checks that a program asking for
# POSIX still gets a consistent header.  Fails listing every command that did
# not compile cleanly.  Used by the ctest test "headers" and by .ci/run.
cmake_minimum_required(VERSION 3.16)

if(NOT TIDE_SOURCE_DIR)
    get_filename_component(TIDE_SOURCE_DIR "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
endif()
if(NOT TIDE_HDR_DIR)
    set(TIDE_HDR_DIR "${CMAKE_CURRENT_BINARY_DIR}/tide-headers-check")
endif()
if(NOT DEFINED TIDE_HDR_CC)
    set(TIDE_HDR_CC cc)
endif()

set(_c_modes c99 c11 posix default)
set(_mode_c99 -std=c99 -Wall -Wextra -Wpedantic -Werror)
set(_mode_c11 -std=c11 -Wpedantic -Werror)
set(_mode_posix -std=c99 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Wpedantic -Werror)
set(_mode_default -Wall -Wextra -Werror)
set(_cxx_modes cxx17 cxx11)
set(_mode_cxx17 -std=c++17 -Wall -Wextra -Wpedantic -Werror)
set(_mode_cxx11 -std=c++11 -Wall -Wextra -Wpedantic -Werror)

set(_inc "${TIDE_SOURCE_DIR}/include")
file(GLOB _sub RELATIVE "${_inc}" "${_inc}/tide/*.h")
list(SORT _sub)
set(_headers tide.h ${_sub})

# Text checks: C linkage for C++, no feature-test macro.
set(_failed 0)
foreach(_h IN LISTS _headers)
    file(READ "${_inc}/${_h}" _text)
    if(_text MATCHES "TIDE_API" AND NOT _text MATCHES "#ifdef __cplusplus\nextern \"C\" {")
        message("FAIL ${_h}: declares functions without an extern \"C\" block for C++")
        math(EXPR _failed "${_failed} + 1")
    endif()
    # Too late when the program included a system header first, and not the
    # header's business: the program chooses its feature macros.
    if(_text MATCHES "#[ \t]*(define|undef)[ \t]+(_[A-Z0-9_]*_SOURCE|_FILE_OFFSET_BITS|_TIME_BITS)[ \t\n(]")
        message("FAIL ${_h}: defines a feature-test macro (${CMAKE_MATCH_2})")
        math(EXPR _failed "${_failed} + 1")
    endif()
endforeach()

file(REMOVE_RECURSE "${TIDE_HDR_DIR}")
file(MAKE_DIRECTORY "${TIDE_HDR_DIR}")

# One TU per header: the header is the very first thing it sees.
set(_tus)
foreach(_h IN LISTS _headers)
    string(MAKE_C_IDENTIFIER "${_h}" _id)
    file(WRITE "${TIDE_HDR_DIR}/${_id}.c"
         "#include <${_h}>\nextern int tide_hdr_check_${_id};\n")
    list(APPEND _tus ${_id})
endforeach()

# Everything at once, sub-headers first, with uses that need the system's
# definitions (macros expand here, not in the header) and the exact types of
# the prototypes (a struct first named in a parameter list would not match).
set(_all "")
set(_rev ${_headers})
list(REVERSE _rev)
foreach(_h IN LISTS _rev)
    string(APPEND _all "#include <${_h}>\n")
endforeach()
string(APPEND _all [=[
#ifdef __cplusplus
extern "C" {
#endif
extern const long tide_hdr_check_values[];
const long tide_hdr_check_values[] = {
    TIDE_VERSION_MAJOR, TIDE_DEFAULT_STACK_SIZE, TIDE_EAI_NONAME, TIDE_IS_EAI(TIDE_EAI_NONAME),
    TIDE_SERVER_CANCEL, TIDE_FILE_WRITE_CHUNK, TIDE_PROC_SIGNALED(9),
    TIDE_PROC_IS_SIGNALED(TIDE_PROC_SIGNALED(9)), TIDE_PROC_TERMSIG(TIDE_PROC_SIGNALED(9)),
    TIDE_GROUP_MAX_ERRORS, TIDE_QUEUE_PRIORITY, TIDE_ALL_COMPLETED
};
extern int (*const tide_hdr_check_gai)(const char *, const char *, const struct addrinfo *,
                                       struct addrinfo **);
int (*const tide_hdr_check_gai)(const char *, const char *, const struct addrinfo *,
                                struct addrinfo **) = tide_getaddrinfo;
extern int (*const tide_hdr_check_sigwait)(const sigset_t *);
int (*const tide_hdr_check_sigwait)(const sigset_t *) = tide_signal_wait;
extern ssize_t (*const tide_hdr_check_recvfrom)(int, void *, size_t, int, struct sockaddr *,
                                                socklen_t *);
ssize_t (*const tide_hdr_check_recvfrom)(int, void *, size_t, int, struct sockaddr *,
                                         socklen_t *) = tide_recvfrom;
extern ssize_t (*const tide_hdr_check_writev)(int, const struct iovec *, int);
ssize_t (*const tide_hdr_check_writev)(int, const struct iovec *, int) = tide_writev;
extern ssize_t (*const tide_hdr_check_sendfile)(int, int, off_t *, size_t);
ssize_t (*const tide_hdr_check_sendfile)(int, int, off_t *, size_t) = tide_sendfile;
extern int (*const tide_hdr_check_open)(const char *, int, mode_t);
int (*const tide_hdr_check_open)(const char *, int, mode_t) = tide_file_open;
extern int (*const tide_hdr_check_stat)(const char *, struct stat *);
int (*const tide_hdr_check_stat)(const char *, struct stat *) = tide_file_stat;
extern int tide_hdr_check_pid(pid_t pid);
int tide_hdr_check_pid(pid_t pid) { return (int)pid; }
#ifdef __cplusplus
}
/* Redeclared with C linkage: an error if a header declared them as C++. */
extern "C" int tide_await(tide_task *t);
extern "C" int tide_group_init(tide_group *g);
extern "C" int tide_signal_handler_remove(int signo);
extern "C" int tide_file_fsync(int fd);
extern "C" int tide_process_pid(const tide_process *p);
#endif
]=])
file(WRITE "${TIDE_HDR_DIR}/all.c" "${_all}")
list(APPEND _tus all)
foreach(_tu IN LISTS _tus)
    configure_file("${TIDE_HDR_DIR}/${_tu}.c" "${TIDE_HDR_DIR}/${_tu}.cpp" COPYONLY)
endforeach()

set(_ran 0)
# _check(COMPILER EXT MODES...)
function(_check compiler ext)
    foreach(_mode IN LISTS ARGN)
        set(_bad 0)
        foreach(_tu IN LISTS _tus)
            set(_cmd ${compiler} ${_mode_${_mode}} -I "${_inc}" -fsyntax-only
                     "${TIDE_HDR_DIR}/${_tu}.${ext}")
            execute_process(COMMAND ${_cmd} RESULT_VARIABLE _rc OUTPUT_VARIABLE _out
                            ERROR_VARIABLE _out)
            # Clean means no diagnostic at all, not only exit status 0.
            if(NOT _rc EQUAL 0 OR NOT _out STREQUAL "")
                list(JOIN _cmd " " _cmds)
                message("FAIL ${_cmds}\n${_out}")
                math(EXPR _bad "${_bad} + 1")
            endif()
        endforeach()
        list(LENGTH _tus _n)
        if(_bad EQUAL 0)
            message("ok   ${compiler} ${_mode}: ${_n} translation units")
        else()
            message("FAIL ${compiler} ${_mode}: ${_bad} of ${_n} translation units")
            math(EXPR _failed "${_failed} + 1")
        endif()
        math(EXPR _ran "${_ran} + 1")
    endforeach()
    set(_failed ${_failed} PARENT_SCOPE)
    set(_ran ${_ran} PARENT_SCOPE)
endfunction()

message("tide headers: ${_headers}")
foreach(_cc IN LISTS TIDE_HDR_CC)
    _check("${_cc}" c ${_c_modes})
endforeach()
set(_ncxx 0)
foreach(_cxx IN LISTS TIDE_HDR_CXX)
    if(_cxx)
        _check("${_cxx}" cpp ${_cxx_modes})
        math(EXPR _ncxx "${_ncxx} + 1")
    endif()
endforeach()
if(_ncxx EQUAL 0)
    if(TIDE_HDR_REQUIRE_CXX)
        message(FATAL_ERROR "tide headers: no C++ compiler given (TIDE_HDR_CXX)")
    endif()
    message("note: no C++ compiler: the headers were not compiled as C++")
endif()
if(NOT _failed EQUAL 0)
    message(FATAL_ERROR "tide headers: ${_failed} failed (of ${_ran} compiler modes and the text checks)")
endif()
message("tide headers: all ${_ran} compiler modes clean")
