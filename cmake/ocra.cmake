# SPDX-License-Identifier: Apache-2.0
# Compiler flags and the ocra_module() helper: one folder, one static library, one test binary.

set(OCRA_WARNINGS
    -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2
    -Wvla -Wcast-qual -Wwrite-strings -Wundef -Wconversion -Wno-sign-conversion)
if(CMAKE_C_COMPILER_ID STREQUAL "GNU")
    list(APPEND OCRA_WARNINGS -Wjump-misses-init)
endif()
if(OCRA_WERROR)
    list(APPEND OCRA_WARNINGS -Werror)
endif()
add_compile_options(${OCRA_WARNINGS})
add_compile_definitions(_GNU_SOURCE)

if(OCRA_FUZZ)
    add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
    add_link_options(-fsanitize=address,undefined)
endif()

# ocra_module(NAME SOURCES a.c b.c DEPS ocra_base PkgConfig::X)
# Builds libocra_NAME.a and, when NAME_test.c exists beside it, the NAME_test
# executable registered with ctest (working directory: the source root).
function(ocra_module name)
    cmake_parse_arguments(M "" "" "SOURCES;DEPS" ${ARGN})
    add_library(ocra_${name} STATIC ${M_SOURCES})
    target_include_directories(ocra_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
    target_link_libraries(ocra_${name} PUBLIC ${M_DEPS})
    set(test_src ${CMAKE_CURRENT_SOURCE_DIR}/${name}_test.c)
    if(EXISTS ${test_src})
        add_executable(${name}_test ${test_src})
        target_include_directories(${name}_test PRIVATE ${PROJECT_SOURCE_DIR}/tests)
        target_compile_definitions(${name}_test PRIVATE OCRA_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
        target_link_libraries(${name}_test PRIVATE ocra_${name})
        add_test(NAME ${name} COMMAND ${name}_test WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
        set_tests_properties(${name} PROPERTIES SKIP_RETURN_CODE 77)
    endif()
endfunction()
