# Cross toolchain: Debian's gcc-aarch64-linux-gnu, with arm64 multiarch libraries
# (e.g. libcmocka-dev:arm64 in /usr/lib/aarch64-linux-gnu) and qemu-user to run
# the test binaries:
#   cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
#   ctest --test-dir build-arm64     # runs every test through qemu-aarch64
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_ASM_COMPILER aarch64-linux-gnu-gcc)

# Target libraries: the cross sysroot plus Debian multiarch paths under /usr.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)

# pkg-config must only see arm64 .pc files.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")

# ctest (and add_custom_command with target executables) run binaries through qemu.
find_program(TIDE_QEMU_AARCH64 NAMES qemu-aarch64 qemu-aarch64-static)
# The loader and libc must be the multiarch ones (libc6:arm64, pulled in by
# libcmocka-dev:arm64), the same the test binaries' libraries were built
# against: with the cross package's older copy (-L /usr/aarch64-linux-gnu),
# qemu 7.2 hangs in the first pthread_create.
if(EXISTS /lib/ld-linux-aarch64.so.1)
    set(_tide_qemu_root /)
else()
    set(_tide_qemu_root /usr/aarch64-linux-gnu)
endif()
if(TIDE_QEMU_AARCH64)
    set(CMAKE_CROSSCOMPILING_EMULATOR "${TIDE_QEMU_AARCH64};-L;${_tide_qemu_root}")
endif()
