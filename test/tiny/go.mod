module qbasis.local/test/tiny

go 1.26.0
