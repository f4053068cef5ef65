# CMake toolchain file: cross-compile modelcrypt for 64-bit Windows with MinGW-w64 (Debian/Ubuntu:
# apt-get install g++-mingw-w64-x86-64-posix; the posix thread model gives std::thread and the
# pthreads the C tests use). Tests run under Wine (CMAKE_CROSSCOMPILING_EMULATOR), so `ctest` works.
# Used by scripts/check_windows_cross.sh, which also builds the static OpenSSL this needs:
#   cmake -S . -B build-win -DCMAKE_TOOLCHAIN_FILE=scripts/cross/mingw-w64-x86_64.cmake \
#         -DOPENSSL_ROOT_DIR=<mingw OpenSSL prefix> -DMODELCRYPT_BUILD_TESTS=ON
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR AMD64)

set(_mc_triple x86_64-w64-mingw32)
find_program(CMAKE_C_COMPILER NAMES ${_mc_triple}-gcc-posix ${_mc_triple}-gcc REQUIRED)
find_program(CMAKE_CXX_COMPILER NAMES ${_mc_triple}-g++-posix ${_mc_triple}-g++ REQUIRED)
find_program(CMAKE_RC_COMPILER NAMES ${_mc_triple}-windres)

# Headers and libraries from the MinGW sysroot and the OpenSSL prefix only, never the build host's.
set(CMAKE_FIND_ROOT_PATH /usr/${_mc_triple})
if(OPENSSL_ROOT_DIR)
  list(APPEND CMAKE_FIND_ROOT_PATH "${OPENSSL_ROOT_DIR}")
endif()
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

find_program(_mc_wine NAMES wine64 wine)
if(_mc_wine)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${_mc_wine}")
endif()
