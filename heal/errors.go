package heal

import "errors"

// Errors, usable with errors.Is.
var (
	// ErrInvalidConfig: a Config field is unusable; the error names it.
	ErrInvalidConfig = errors.New("heal: invalid config")
	// ErrStopped: the heal service was stopped.
	ErrStopped = errors.New("heal: stopped")
	// ErrTimeout: a vote's deadline passed before it was decided; the
	// error also wraps the ctx's error.
	ErrTimeout = errors.New("heal: timeout")
	// ErrBadFrame: a heal frame from another node could not be decoded
	// (it is dropped and counted).
	ErrBadFrame = errors.New("heal: malformed frame")
	// ErrBadOption: a bad argument to a method (an empty or duplicate
	// reconciler name, a vote topic or value too large).
	ErrBadOption = errors.New("heal: bad option")
)
