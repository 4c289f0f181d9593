//go:build !(nodaltrace && linux && amd64)

package hoptrace

// Enabled says whether the stamps are compiled in.
const Enabled = false

// Stamp notes that h happened now (a no-op without the nodaltrace tag).
func Stamp(Hop) {}

// WakeMode notes how the owner of a mailbox saw its message (a no-op
// without the nodaltrace tag).
func WakeMode(int) {}

// Record writes the slots as one side's record of a call (a no-op without
// the nodaltrace tag).
func Record(string, uint64) {}

// Flush writes out the records kept so far (a no-op without the
// nodaltrace tag).
func Flush() {}
