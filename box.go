package nodal

import "unsafe"

// boxBytes returns *h as an any without allocating: the interface's data
// word is h itself, where converting *h to any would copy the slice header
// into a new allocation of its own. dist.Frames keeps the headers of a
// batch's []byte messages in one array, so a stream of them costs one
// allocation per batch instead of one per message. *h must never change
// afterwards (an interface's value is immutable).
func boxBytes(h *[]byte) any {
	v := any([]byte(nil)) // the type word of []byte; a nil slice boxes without allocating
	(*[2]unsafe.Pointer)(unsafe.Pointer(&v))[1] = unsafe.Pointer(h)
	return v
}
