package nodal

import "unsafe"

// boxBytes returns *h as an any without allocating: the interface's data
// word is h itself, where converting *h to any would copy the slice header
// into a new allocation of its own. dist.Frames keeps the headers of a
// batch's []byte messages in one array, so a stream of them costs one
// allocation per batch instead of one per message. *h must never change
// afterwards (an interface's value is immutable).
func boxBytes(h *[]byte) any {
	var v any
	w := (*[2]unsafe.Pointer)(unsafe.Pointer(&v))
	w[0], w[1] = bytesType, unsafe.Pointer(h)
	return v
}

// bytesType is the type word of a []byte in an interface.
var bytesType = func() unsafe.Pointer {
	v := any([]byte(nil)) // a nil slice boxes without allocating
	return (*[2]unsafe.Pointer)(unsafe.Pointer(&v))[0]
}()
