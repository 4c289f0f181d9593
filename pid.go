package nodal

import (
	"cmp"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Pid identifies a process: the node it lives on, its number on that node and
// the incarnation (creation) of the node that spawned it. A Pid is a plain
// comparable value; it prints like Erlang's "<a@host.42.3>" (node.id.incarnation)
// and ParsePid reads that form back. A pid whose incarnation differs from its
// node's current one belongs to an earlier start of that node and is dead by
// definition.
type Pid struct {
	Node        string
	ID          uint64
	Incarnation uint64
}

// String returns "<node.id.incarnation>", for example "<a@host.42.3>".
func (p Pid) String() string {
	return "<" + tripleString(p.Node, p.ID, p.Incarnation) + ">"
}

// IsZero reports whether p is the zero Pid, which names no process. Exit
// signals sent by the node itself (Node.Exit, Node.Stop) carry the zero Pid
// as their sender.
func (p Pid) IsZero() bool { return p == Pid{} }

// Compare orders pids by node name, then id, then incarnation. It returns -1,
// 0 or +1 and is what the runtime uses to sort pids in its outputs.
func (p Pid) Compare(q Pid) int {
	if c := cmp.Compare(p.Node, q.Node); c != 0 {
		return c
	}
	if c := cmp.Compare(p.ID, q.ID); c != 0 {
		return c
	}
	return cmp.Compare(p.Incarnation, q.Incarnation)
}

// ParsePid is the inverse of Pid.String. It returns an error wrapping
// ErrBadPid when s is not of the form "<node.id.incarnation>" with a valid
// node name.
func ParsePid(s string) (Pid, error) {
	body, ok := strings.CutPrefix(s, "<")
	if ok {
		body, ok = strings.CutSuffix(body, ">")
	}
	if !ok {
		return Pid{}, fmt.Errorf("%w: %q", ErrBadPid, s)
	}
	node, id, inc, err := parseTriple(body)
	if err != nil {
		return Pid{}, fmt.Errorf("%w: %q: %w", ErrBadPid, s, err)
	}
	return Pid{Node: node, ID: id, Incarnation: inc}, nil
}

// Ref is a reference unique on its node for the node's incarnation: monitors
// and calls are identified by one. It prints like Erlang's "#Ref<a@host.17.3>".
type Ref struct {
	Node        string
	ID          uint64
	Incarnation uint64
}

// String returns "#Ref<node.id.incarnation>".
func (r Ref) String() string {
	return "#Ref<" + tripleString(r.Node, r.ID, r.Incarnation) + ">"
}

// IsZero reports whether r is the zero Ref.
func (r Ref) IsZero() bool { return r == Ref{} }

// Compare orders refs by node name, then id, then incarnation.
func (r Ref) Compare(q Ref) int {
	return Pid(r).Compare(Pid(q))
}

// ParseRef is the inverse of Ref.String. It returns an error wrapping ErrBadRef
// when s is malformed.
func ParseRef(s string) (Ref, error) {
	body, ok := strings.CutPrefix(s, "#Ref<")
	if ok {
		body, ok = strings.CutSuffix(body, ">")
	}
	if !ok {
		return Ref{}, fmt.Errorf("%w: %q", ErrBadRef, s)
	}
	node, id, inc, err := parseTriple(body)
	if err != nil {
		return Ref{}, fmt.Errorf("%w: %q: %w", ErrBadRef, s, err)
	}
	return Ref{Node: node, ID: id, Incarnation: inc}, nil
}

func tripleString(node string, id uint64, inc uint64) string {
	b := make([]byte, 0, len(node)+24)
	b = append(b, node...)
	b = append(b, '.')
	b = strconv.AppendUint(b, id, 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, inc, 10)
	return string(b)
}

// parseTriple splits "node.id.incarnation"; the node name may itself contain
// dots (long names), so the numbers are taken from the right.
func parseTriple(body string) (node string, id uint64, inc uint64, err error) {
	i := strings.LastIndexByte(body, '.')
	if i < 0 {
		return "", 0, 0, fmt.Errorf("missing incarnation")
	}
	inc64, err := strconv.ParseUint(body[i+1:], 10, 64)
	if err != nil {
		return "", 0, 0, fmt.Errorf("bad incarnation: %w", err)
	}
	rest := body[:i]
	j := strings.LastIndexByte(rest, '.')
	if j < 0 {
		return "", 0, 0, fmt.Errorf("missing id")
	}
	id, err = strconv.ParseUint(rest[j+1:], 10, 64)
	if err != nil {
		return "", 0, 0, fmt.Errorf("bad id: %w", err)
	}
	node = rest[:j]
	if err := ValidateNodeName(node); err != nil {
		return "", 0, 0, err
	}
	return node, id, inc64, nil
}

// maxNodeNameLen bounds a node name (Erlang atoms are at most 255 characters).
const maxNodeNameLen = 255

// ValidateNodeName checks that s is a node name of the form name@host: a
// non-empty name of letters, digits, '_' and '-', then '@', then a non-empty
// host of letters, digits, '_', '-' and '.' that neither starts nor ends with
// a dot, or an IPv4 or IPv6 address ("a@::1"); 255 bytes at most. It returns an error wrapping ErrBadNodeName.
func ValidateNodeName(s string) error {
	if len(s) == 0 || len(s) > maxNodeNameLen {
		return fmt.Errorf("%w: %q: length must be 1..%d", ErrBadNodeName, s, maxNodeNameLen)
	}
	name, host, ok := strings.Cut(s, "@")
	if !ok {
		return fmt.Errorf("%w: %q: want name@host", ErrBadNodeName, s)
	}
	if name == "" || host == "" {
		return fmt.Errorf("%w: %q: empty name or host", ErrBadNodeName, s)
	}
	for i := 0; i < len(name); i++ {
		if !isNameByte(name[i]) {
			return fmt.Errorf("%w: %q: bad character %q in name", ErrBadNodeName, s, name[i])
		}
	}
	// The host's bytes are checked first: an IPv4 address passes that
	// check too, and a reply's send checks its node's name every time,
	// where netip.ParseAddr would cost more than the rest.
	bad := -1 // the host's first bad byte
	for i := 0; i < len(host); i++ {
		if c := host[i]; !isNameByte(c) && c != '.' {
			bad = i
			break
		}
	}
	if bad < 0 && host[0] != '.' && host[len(host)-1] != '.' {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.Zone() == "" {
		return nil // an IPv4 or IPv6 address: a long name
	}
	if host[0] == '.' || host[len(host)-1] == '.' {
		return fmt.Errorf("%w: %q: host starts or ends with a dot", ErrBadNodeName, s)
	}
	return fmt.Errorf("%w: %q: bad character %q in host", ErrBadNodeName, s, host[bad])
}

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}
