package supervisor

import (
	"fmt"
	"maps"
	"slices"

	"github.com/nodal-go/nodal"
)

// handleCall serves one management call. It returns a non-nil reason when
// the supervisor must exit.
func (s *supervisor) handleCall(req nodal.CallRequest) error {
	var rep reply
	var stop error
	if r, ok := req.Req.(request); ok {
		rep, stop = s.serve(r)
	} else {
		rep.err = fmt.Errorf("%w: unknown supervisor request %T", ErrNotSupervisor, req.Req)
	}
	s.p.Reply(req.From, rep)
	return stop
}

// serve runs one management request and returns its reply, and a non-nil
// reason when the supervisor must exit.
func (s *supervisor) serve(r request) (rep reply, stop error) {
	switch r.op {
	case opStartChild:
		rep = s.callStartChild(r.spec)
	case opStartDynamic:
		rep = s.callStartDynamic(r)
	case opTerminate:
		rep = s.callTerminate(r)
	case opRestart:
		rep = s.callRestart(r.id)
	case opDelete:
		rep = s.callDelete(r.id)
	case opWhich:
		rep.children = s.whichChildren()
	case opCount:
		rep.count = s.countChildren()
	case opStop:
		s.terminateAll()
		stop = nodal.ReasonNormal
	default:
		rep.err = fmt.Errorf("%w: unknown supervisor request %d", ErrNotSupervisor, r.op)
	}
	return rep, stop
}

func (s *supervisor) findStatic(id string) *child {
	for _, c := range s.static {
		if c.id == id {
			return c
		}
	}
	return nil
}

func (s *supervisor) callStartChild(spec Child) reply {
	if s.strategy == SimpleOneForOne {
		return reply{err: &ChildError{ID: spec.ID, Err: ErrWrongStrategy}}
	}
	if old := s.findStatic(spec.ID); old != nil {
		if !old.pid.IsZero() {
			return reply{err: &ChildError{ID: spec.ID, Pid: old.pid, Err: ErrChildAlreadyStarted}}
		}
		return reply{err: &ChildError{ID: spec.ID, Err: ErrChildAlreadyPresent}}
	}
	c := &child{id: spec.ID, start: spec.Start, restart: spec.Restart, shutdown: spec.Shutdown, typ: spec.Type}
	if err := s.startChild(c); err != nil {
		return reply{err: startError(c.id, err)}
	}
	if !c.pid.IsZero() || c.restart != Temporary {
		s.static = append(s.static, c)
	}
	return reply{pid: c.pid}
}

func (s *supervisor) callStartDynamic(r request) reply {
	if s.strategy != SimpleOneForOne {
		return reply{err: &ChildError{Err: ErrWrongStrategy}}
	}
	args := r.args
	if r.encoded {
		// From another node: the args are in the caller's codec, which
		// matches this node's for every type both registered.
		v, err := s.p.Node().Codec().Unmarshal(r.raw)
		if err != nil {
			return reply{err: &ChildError{Err: fmt.Errorf("%w: args: %w", ErrStartChild, err)}}
		}
		args = v
	}
	t := s.template
	s.nextSeq++
	c := &child{
		seq:      s.nextSeq,
		start:    func(p *nodal.Process) (nodal.Pid, error) { return t.Start(p, args) },
		restart:  t.Restart,
		shutdown: t.Shutdown,
		typ:      t.Type,
		dynamic:  true,
	}
	if err := s.startChild(c); err != nil {
		return reply{err: startError("", err)}
	}
	if !c.pid.IsZero() {
		s.dynamic[c.seq] = c
	}
	return reply{pid: c.pid}
}

func (s *supervisor) callTerminate(r request) reply {
	var c *child
	if r.byPid {
		c = s.byPid[r.pid]
		if c == nil {
			return reply{err: &ChildError{Pid: r.pid, Err: ErrChildNotFound}}
		}
	} else {
		if s.strategy == SimpleOneForOne {
			return reply{err: &ChildError{ID: r.id, Err: ErrWrongStrategy}}
		}
		c = s.findStatic(r.id)
		if c == nil {
			return reply{err: &ChildError{ID: r.id, Err: ErrChildNotFound}}
		}
	}
	s.terminate(c)
	if c.dynamic || c.restart == Temporary {
		s.forget(c)
	}
	return reply{}
}

func (s *supervisor) staticOp(id string) (*child, error) {
	if s.strategy == SimpleOneForOne {
		return nil, &ChildError{ID: id, Err: ErrWrongStrategy}
	}
	c := s.findStatic(id)
	switch {
	case c == nil:
		return nil, &ChildError{ID: id, Err: ErrChildNotFound}
	case c.restarting:
		return nil, &ChildError{ID: id, Err: ErrChildRestarting}
	case !c.pid.IsZero():
		return nil, &ChildError{ID: id, Pid: c.pid, Err: ErrChildRunning}
	}
	return c, nil
}

func (s *supervisor) callRestart(id string) reply {
	c, err := s.staticOp(id)
	if err != nil {
		return reply{err: err}
	}
	if err := s.startChild(c); err != nil {
		return reply{err: startError(id, err)}
	}
	return reply{pid: c.pid}
}

func (s *supervisor) callDelete(id string) reply {
	c, err := s.staticOp(id)
	if err != nil {
		return reply{err: err}
	}
	s.static = slices.DeleteFunc(s.static, func(x *child) bool { return x == c })
	return reply{}
}

func (s *supervisor) children() []*child {
	out := slices.Clone(s.static)
	for _, seq := range slices.Sorted(maps.Keys(s.dynamic)) {
		out = append(out, s.dynamic[seq])
	}
	return out
}

func (s *supervisor) whichChildren() []ChildInfo {
	cs := s.children()
	out := make([]ChildInfo, 0, len(cs))
	for _, c := range cs {
		out = append(out, ChildInfo{ID: c.id, Pid: c.pid, Restarting: c.restarting, Type: c.typ})
	}
	return out
}

func (s *supervisor) countChildren() ChildCount {
	var n ChildCount
	if s.strategy == SimpleOneForOne {
		n.Specs = 1
	}
	for _, c := range s.children() {
		if !c.dynamic {
			n.Specs++
		}
		if !c.pid.IsZero() {
			n.Active++
		}
		if c.typ == ChildSupervisor {
			n.Supervisors++
		} else {
			n.Workers++
		}
	}
	return n
}
