// Asio and Asio SSL compiled once for the whole program (BOOST_ASIO_SEPARATE_COMPILATION),
// so that every other translation unit only parses declarations.
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
