package crdt

import (
	"errors"
	"fmt"
)

// ErrMalformed is wrapped by every decoding error: the input is truncated,
// has trailing bytes, breaks a count limit, is not in canonical order, or
// describes a state that violates the dot-store invariants.
var ErrMalformed = errors.New("crdt: malformed encoding")

// ErrVersion is wrapped when an encoding has an unknown format version.
var ErrVersion = errors.New("crdt: unsupported encoding version")

// ErrKind is wrapped when an encoding holds a different kind of value than
// the decoder expects (for example a digest given to an AWORSet decoder).
var ErrKind = errors.New("crdt: unexpected encoding kind")

// DecodeError reports where and why decoding failed. It wraps ErrMalformed,
// ErrVersion or ErrKind.
type DecodeError struct {
	// Offset is the byte offset at which the problem was found.
	Offset int
	// Reason says what was wrong, in words.
	Reason string
	// Err is the sentinel this error wraps.
	Err error
}

// Error implements error.
func (e *DecodeError) Error() string {
	return fmt.Sprintf("%v at byte %d: %s", e.Err, e.Offset, e.Reason)
}

// Unwrap returns the sentinel.
func (e *DecodeError) Unwrap() error { return e.Err }
