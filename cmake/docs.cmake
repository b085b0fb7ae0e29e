# tide: the API reference, the man pages and the guide's code blocks
# (included by CMakeLists.txt; see docs/api.md).
#
#   target docs         HTML in <build>/docs/html, man pages in <build>/docs/man/man3,
#                       from the header comments (scripts/apidoc.py); part of ALL
#   install             share/doc/tide/html, share/man/man3
#   ctest api_docs      (label docs) every public function has a doc comment that
#                       names its errors
#   ctest api_docs_selftest (label docs) the generator and the check on a made-up tree
#   target guide        every ```c block of docs/guide/*.md compiled
#                       (scripts/guide_blocks.py extracts them at configure time)
#   ctest guide_build   (label docs) builds target guide: the blocks compile
#   ctest guide_names   (label docs) every tide name the guide uses is declared
#   ctest guide_<f>_py<n> (label docs) an asyncio program marked runnable prints
#                       the same as the tide program beside it (python3 >= 3.11)
#   ctest guide_<name>  (label docs) each block marked runnable runs and prints
#                       what the guide says it prints
#   ctest docs_browser  (label browser) headless Chromium renders the reference
#                       (scripts/docs_browser.sh; only when chromium is found)

find_package(Python3 COMPONENTS Interpreter)
option(TIDE_BUILD_DOCS "Generate the API reference and man pages (needs python3)" ON)

set(_tide_docdir "${CMAKE_BINARY_DIR}/docs")
if(TIDE_BUILD_DOCS AND Python3_Interpreter_FOUND)
    file(GLOB _tide_pub_headers CONFIGURE_DEPENDS
         "${CMAKE_CURRENT_SOURCE_DIR}/include/tide.h"
         "${CMAKE_CURRENT_SOURCE_DIR}/include/tide/*.h")
    add_custom_command(OUTPUT "${_tide_docdir}/apidoc.stamp"
        COMMAND ${CMAKE_COMMAND} -E remove_directory "${_tide_docdir}/html"
        COMMAND ${CMAKE_COMMAND} -E remove_directory "${_tide_docdir}/man"
        COMMAND "${Python3_EXECUTABLE}" "${CMAKE_CURRENT_SOURCE_DIR}/scripts/apidoc.py"
                --root "${CMAKE_CURRENT_SOURCE_DIR}"
                --html "${_tide_docdir}/html" --man "${_tide_docdir}/man"
                --stamp "${_tide_docdir}/apidoc.stamp"
        DEPENDS ${_tide_pub_headers} "${CMAKE_CURRENT_SOURCE_DIR}/scripts/apidoc.py"
        COMMENT "API reference: docs/html, docs/man/man3"
        VERBATIM)
    add_custom_target(docs ALL DEPENDS "${_tide_docdir}/apidoc.stamp")
    install(DIRECTORY "${_tide_docdir}/html/" DESTINATION "${CMAKE_INSTALL_DOCDIR}/html"
            OPTIONAL)
    install(DIRECTORY "${_tide_docdir}/man/man3" DESTINATION "${CMAKE_INSTALL_MANDIR}"
            OPTIONAL)
    if(TIDE_BUILD_TESTS)
        add_test(NAME api_docs
                 COMMAND "${Python3_EXECUTABLE}" "${CMAKE_CURRENT_SOURCE_DIR}/scripts/apidoc.py"
                         --root "${CMAKE_CURRENT_SOURCE_DIR}" --check
                         --html "${CMAKE_BINARY_DIR}/docs-check/html"
                         --man "${CMAKE_BINARY_DIR}/docs-check/man")
        set_tests_properties(api_docs PROPERTIES TIMEOUT 60 LABELS docs)
        add_test(NAME api_docs_selftest
                 COMMAND "${Python3_EXECUTABLE}"
                         "${CMAKE_CURRENT_SOURCE_DIR}/tests/docs/apidoc_selftest.py")
        set_tests_properties(api_docs_selftest PROPERTIES TIMEOUT 60 LABELS docs)
        find_program(TIDE_CHROMIUM NAMES chromium chromium-browser google-chrome)
        find_program(TIDE_BASH_DOCS bash)
        if(TIDE_CHROMIUM AND TIDE_BASH_DOCS)
            add_test(NAME docs_browser
                     COMMAND "${TIDE_BASH_DOCS}" "${CMAKE_CURRENT_SOURCE_DIR}/scripts/docs_browser.sh"
                             "${CMAKE_BINARY_DIR}/docs-browser")
            set_tests_properties(docs_browser PROPERTIES TIMEOUT 180 LABELS browser)
        endif()
    endif()
else()
    add_custom_target(docs COMMAND ${CMAKE_COMMAND} -E echo
                      "tide: python3 not found (or TIDE_BUILD_DOCS=OFF): no API reference")
endif()

# The guide's code blocks: one executable (a block with main) or object
# library (a block without) per ```c block, built with the examples' flags.
# (default: with the tests, whose ctest entries run them)
option(TIDE_BUILD_GUIDE "Compile the ```c blocks of docs/guide/*.md" ${TIDE_BUILD_TESTS})
if(TIDE_BUILD_GUIDE AND Python3_Interpreter_FOUND)
    file(GLOB _tide_guide_md CONFIGURE_DEPENDS "${CMAKE_CURRENT_SOURCE_DIR}/docs/guide/*.md")
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
                 ${_tide_guide_md} "${CMAKE_CURRENT_SOURCE_DIR}/scripts/guide_blocks.py")
    execute_process(
        COMMAND "${Python3_EXECUTABLE}" "${CMAKE_CURRENT_SOURCE_DIR}/scripts/guide_blocks.py"
                extract --out "${CMAKE_BINARY_DIR}/guide" ${_tide_guide_md}
        RESULT_VARIABLE _tide_guide_rc)
    if(NOT _tide_guide_rc EQUAL 0)
        message(FATAL_ERROR "tide: scripts/guide_blocks.py could not extract docs/guide/*.md")
    endif()
    set(_tide_guide_targets)
    # tide_guide_block(NAME FILE HAS_MAIN RUNNABLE): called by the extracted list.
    function(tide_guide_block name file has_main runnable)
        if(NOT TIDE_HAVE_TLS AND name MATCHES "tls")
            return()
        endif()
        if(has_main)
            add_executable(guide_${name} "${file}")
            set_target_properties(guide_${name} PROPERTIES
                RUNTIME_OUTPUT_DIRECTORY "${CMAKE_BINARY_DIR}/guide")
        else()
            add_library(guide_${name} OBJECT "${file}")
        endif()
        target_link_libraries(guide_${name} PRIVATE tide_static tide_build_flags)
        if(TIDE_WERROR)
            target_compile_options(guide_${name} PRIVATE -Werror)
        endif()
        set(_tide_guide_targets ${_tide_guide_targets} guide_${name} PARENT_SCOPE)
        if(runnable AND TIDE_BUILD_TESTS)
            add_test(NAME guide_${name}
                     COMMAND "${Python3_EXECUTABLE}"
                             "${CMAKE_CURRENT_SOURCE_DIR}/scripts/guide_blocks.py" run
                             "$<TARGET_FILE:guide_${name}>" "${file}.expected")
            _tide_timeout(_timeout guide_${name})
            set_tests_properties(guide_${name} PROPERTIES TIMEOUT ${_timeout} LABELS docs)
        endif()
    endfunction()
    # tide_guide_pyblock(NAME FILE): the asyncio program beside a tide one
    # prints the same (python3 >= 3.11).
    function(tide_guide_pyblock name file)
        if(TIDE_BUILD_TESTS AND Python3_VERSION VERSION_GREATER_EQUAL 3.11)
            add_test(NAME guide_${name}
                     COMMAND "${Python3_EXECUTABLE}"
                             "${CMAKE_CURRENT_SOURCE_DIR}/scripts/guide_blocks.py" run
                             "${file}" "${file}.expected")
            set_tests_properties(guide_${name} PROPERTIES TIMEOUT 60 LABELS docs)
        endif()
    endfunction()
    include("${CMAKE_BINARY_DIR}/guide/blocks.cmake")
    if(_tide_guide_targets)
        add_custom_target(guide DEPENDS ${_tide_guide_targets})
        if(TIDE_BUILD_TESTS)
            add_test(NAME guide_names
                     COMMAND "${Python3_EXECUTABLE}"
                             "${CMAKE_CURRENT_SOURCE_DIR}/scripts/guide_blocks.py" names
                             "${CMAKE_CURRENT_SOURCE_DIR}" ${_tide_guide_md})
            set_tests_properties(guide_names PROPERTIES TIMEOUT 60 LABELS docs)
            add_test(NAME guide_build
                     COMMAND ${CMAKE_COMMAND} --build "${CMAKE_BINARY_DIR}" --target guide)
            set_tests_properties(guide_build PROPERTIES TIMEOUT 600 LABELS docs)
        endif()
    endif()
endif()
