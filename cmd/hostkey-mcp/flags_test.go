package main

import "flag"

var updateREADME = flag.Bool("update", false, "rewrite the README's generated configuration reference")
