package nodal

import "fmt"

// LocalNodeName is the name of a node started with a zero Config: a
// local-only node, as Erlang calls a non-distributed node.
const LocalNodeName = "nonode@nohost"

// Config configures a node. Start copies it; the zero Config is valid and
// gives a local-only node named "nonode@nohost".
type Config struct {
	// Name is the node name, name@host (see ValidateNodeName). Default
	// "nonode@nohost", a node that reaches no other node: links and monitors
	// to pids of other nodes fire at once with reason noconnection.
	Name string
}

// withDefaults returns c with zero fields filled in.
func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = LocalNodeName
	}
	return c
}

// Validate reports whether c (after defaults are applied) is usable. The
// error wraps ErrInvalidConfig and names the field.
func (c Config) Validate() error {
	c = c.withDefaults()
	if err := ValidateNodeName(c.Name); err != nil {
		return fmt.Errorf("%w: Name: %w", ErrInvalidConfig, err)
	}
	return nil
}
