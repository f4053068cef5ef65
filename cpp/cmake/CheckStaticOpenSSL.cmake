# After find_package(OpenSSL 3.0 COMPONENTS Crypto) with OPENSSL_USE_STATIC_LIBS: make sure what was
# found is a static libcrypto >= 3.0 (from OPENSSL_ROOT_DIR when one was given), fail with an
# explanation otherwise, and report the OpenSSL used.
#
# FindOpenSSL alone does not: with OPENSSL_USE_STATIC_LIBS a prefix holding only libcrypto.so gives
# "Could NOT find OpenSSL", or worse, it falls back to the system's libcrypto.a, since it searches the
# system paths after OPENSSL_ROOT_DIR.

set(_mc_ssl_root "${OPENSSL_ROOT_DIR}")
if(NOT _mc_ssl_root AND DEFINED ENV{OPENSSL_ROOT_DIR})
  set(_mc_ssl_root "$ENV{OPENSSL_ROOT_DIR}")
endif()
set(_mc_ssl_where "")
if(_mc_ssl_root)
  set(_mc_ssl_where " under OPENSSL_ROOT_DIR=${_mc_ssl_root}")
endif()
set(_mc_ssl_help
  "modelcrypt links OpenSSL statically (the wheel must not depend on the host's libcrypto). Install the "
  "static library (Debian/Ubuntu: libssl-dev ships libcrypto.a) or point -DOPENSSL_ROOT_DIR=<prefix> at an "
  "OpenSSL >= 3.0 built with static libraries (<prefix>/lib or lib64/libcrypto.a, <prefix>/include/openssl).")
string(REPLACE ";" "" _mc_ssl_help "${_mc_ssl_help}")

set(_mc_ssl_ok "${OPENSSL_FOUND}")
if(_mc_ssl_ok AND _mc_ssl_root AND NOT WIN32)
  get_filename_component(_mc_root_abs "${_mc_ssl_root}" ABSOLUTE)
  get_filename_component(_mc_lib_abs "${OPENSSL_CRYPTO_LIBRARY}" ABSOLUTE)
  string(FIND "${_mc_lib_abs}" "${_mc_root_abs}/" _mc_pos)
  if(NOT _mc_pos EQUAL 0)
    set(_mc_ssl_ok FALSE)  # found elsewhere (the system's), not in the prefix asked for
  endif()
endif()

if(NOT _mc_ssl_ok)
  # Explain why: is there only a shared libcrypto, or an OpenSSL older than 3.0?
  if(_mc_ssl_root)
    find_library(_mc_any_libcrypto NAMES crypto libcrypto PATHS "${_mc_ssl_root}"
                 PATH_SUFFIXES lib lib64 NO_DEFAULT_PATH)
  else()
    find_library(_mc_any_libcrypto NAMES crypto libcrypto)
  endif()
  set(_mc_any_libcrypto_found "${_mc_any_libcrypto}")
  unset(_mc_any_libcrypto CACHE)  # a probe for the message only (NO_CACHE needs CMake 3.21)
  if(OPENSSL_VERSION AND OPENSSL_VERSION VERSION_LESS 3.0)
    message(FATAL_ERROR "modelcrypt needs OpenSSL >= 3.0; found ${OPENSSL_VERSION}${_mc_ssl_where} "
                        "(${OPENSSL_INCLUDE_DIR}). ${_mc_ssl_help}")
  elseif(_mc_any_libcrypto_found AND NOT _mc_any_libcrypto_found MATCHES "\\.a$")
    message(FATAL_ERROR "Only a shared libcrypto was found${_mc_ssl_where}: ${_mc_any_libcrypto_found}, no static "
                        "libcrypto.a. ${_mc_ssl_help}")
  else()
    message(FATAL_ERROR "No static OpenSSL >= 3.0 (libcrypto.a and its headers) was found${_mc_ssl_where}. "
                        "${_mc_ssl_help}")
  endif()
endif()

# Belt and braces: whatever FindOpenSSL returned must be an archive.
if(NOT WIN32)
  get_filename_component(_mc_lib_real "${OPENSSL_CRYPTO_LIBRARY}" REALPATH)
  if(NOT OPENSSL_CRYPTO_LIBRARY MATCHES "\\.a$" OR NOT _mc_lib_real MATCHES "\\.a$")
    message(FATAL_ERROR "Only a shared libcrypto was found${_mc_ssl_where}: ${OPENSSL_CRYPTO_LIBRARY}. "
                        "${_mc_ssl_help}")
  endif()
endif()

message(STATUS "modelcrypt: OpenSSL ${OPENSSL_VERSION} (static), include dir ${OPENSSL_INCLUDE_DIR}, "
               "libcrypto ${OPENSSL_CRYPTO_LIBRARY}")
