package crdt

// SetBigKey sets the slice-to-set threshold for a test and returns a func
// that restores it.
func SetBigKey(n int) func() {
	old := bigKey
	bigKey = n
	return func() { bigKey = old }
}
