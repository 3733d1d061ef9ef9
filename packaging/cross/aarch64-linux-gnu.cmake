# Cross-compiling for arm64 store hardware on a Debian 12 amd64 machine with
# Debian's cross toolchain and multiarch -dev packages (scripts/cross-arm64.sh
# installs them). Tests run under qemu-user (CMAKE_CROSSCOMPILING_EMULATOR).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# Libraries and their CMake/pkg-config files come from the multiarch paths
# (/usr/lib/aarch64-linux-gnu); arch-independent headers from /usr/include.
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
# "-L /": the arm64 binaries run on the multiarch libc6:arm64 (the one the
# arm64 -dev packages pull in), loader included. Not "-L /usr/aarch64-linux-gnu":
# that gives the cross toolchain's ld.so (libc6-arm64-cross) but libc.so.6 still
# from /lib/aarch64-linux-gnu, and ld.so and libc from different glibc builds
# disagree on the layout of _rtld_global (2.36-8 vs 2.36-9+deb12u*): the first
# pthread_create then loops forever walking GL(dl_stack_cache).
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L /)
set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE arm64)
