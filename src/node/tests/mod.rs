//! Unit tests of the node's pure parts that outgrew their files.

mod address_book;
