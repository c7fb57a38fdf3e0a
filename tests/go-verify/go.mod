module need-to-know/go-verify

go 1.19

require golang.org/x/mod v0.0.0

// Debian's golang-golang-x-mod-dev, so the check builds offline from a distribution package.
replace golang.org/x/mod => /usr/share/gocode/src/golang.org/x/mod
