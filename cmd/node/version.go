package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/nodal-go/nodal/p2p"
)

// versionText is what nodal version prints: the module's version ("(devel)"
// when built from a work tree), with the VCS revision when the build
// recorded one, the Go version and the wire protocol.
func versionText() string {
	version, rev := "(unknown)", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		version = bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				rev = " " + s.Value
			}
			if s.Key == "vcs.modified" && s.Value == "true" {
				rev += "+dirty"
			}
		}
	}
	return fmt.Sprintf("nodal %s%s\ngo %s\nprotocol %s\n", version, rev, runtime.Version(), p2p.DistProtocol)
}
