package nodal

import (
	"fmt"
	"slices"
)

// maxNameLen bounds a registered name (Erlang atoms are at most 255 characters).
const maxNameLen = 255

func validateName(name string) error {
	if name == "" || len(name) > maxNameLen {
		return fmt.Errorf("%w: %q: length must be 1..%d", ErrBadName, name, maxNameLen)
	}
	return nil
}

// claimName registers name for p, which must not be visible to anyone else
// yet or must be alive; it fails if the name is taken or p has a name.
func (n *Node) claimName(name string, p *Process) error {
	n.namesMu.Lock()
	defer n.namesMu.Unlock()
	if q, ok := n.names[name]; ok {
		return fmt.Errorf("%w: %q is held by %v", ErrNameTaken, name, q.pid)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dead {
		return &ExitError{Pid: p.pid, Reason: p.reason}
	}
	if old := p.nameLocked(); old != "" {
		return fmt.Errorf("%w: %v is %q", ErrAlreadyRegistered, p.pid, old)
	}
	p.extLocked().name = name
	n.names[name] = p
	return nil
}

// dropName removes name if p still holds it.
func (n *Node) dropName(name string, p *Process) {
	n.namesMu.Lock()
	if n.names[name] == p {
		delete(n.names, name)
	}
	n.namesMu.Unlock()
}

func (n *Node) whereis(name string) *Process {
	n.namesMu.RLock()
	p := n.names[name]
	n.namesMu.RUnlock()
	return p
}

func (n *Node) sendName(from Pid, name string, msg any) error {
	p := n.whereis(name)
	if p == nil {
		return fmt.Errorf("%w: %q", ErrNotRegistered, name)
	}
	n.route(signal{kind: sigMessage, from: from, to: p.pid, msg: msg})
	return nil
}

// Register registers the calling process under name (register/2). It fails
// with ErrNameTaken if another process holds name, with ErrAlreadyRegistered
// if the caller already has a name (a process holds at most one), and with
// ErrBadName for an empty or over-long name. The name is freed when the
// process exits.
func (p *Process) Register(name string) error {
	if err := validateName(name); err != nil {
		return err
	}
	return p.node.claimName(name, p)
}

// Unregister removes the calling process's name. It fails with
// ErrNotRegistered if the process has none.
func (p *Process) Unregister() error {
	n := p.node
	n.namesMu.Lock()
	defer n.namesMu.Unlock()
	p.mu.Lock()
	name := p.nameLocked()
	if name != "" {
		p.ext.name = ""
	}
	p.mu.Unlock()
	if name == "" {
		return fmt.Errorf("%w: %v has no name", ErrNotRegistered, p.pid)
	}
	if n.names[name] == p {
		delete(n.names, name)
	}
	return nil
}

// Whereis returns the pid registered locally under name (whereis/1).
func (n *Node) Whereis(name string) (Pid, bool) {
	p := n.whereis(name)
	if p == nil {
		return Pid{}, false
	}
	return p.pid, true
}

// Registered returns the locally registered names, sorted (registered/0).
func (n *Node) Registered() []string {
	n.namesMu.RLock()
	names := make([]string, 0, len(n.names))
	for name := range n.names {
		names = append(names, name)
	}
	n.namesMu.RUnlock()
	slices.Sort(names)
	return names
}
