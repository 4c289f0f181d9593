package nodal

// smallMap is the set type behind a process's links and monitors: most
// processes have none or one or two, for which a Go map (hundreds of bytes,
// allocated per monitored process and per Call) costs more than the work. It
// keeps up to smallMapMax entries in a slice and switches to a map beyond.
// The zero value is empty; it is not safe for concurrent use (Process.mu
// guards it).
type smallMap[K comparable, V any] struct {
	d *smallMapData[K, V]
}

type smallMapData[K comparable, V any] struct {
	s []smallMapEntry[K, V]
	m map[K]V
}

type smallMapEntry[K comparable, V any] struct {
	k K
	v V
}

// smallMapMax is the number of entries kept in the slice before the map.
const smallMapMax = 8

func (sm *smallMap[K, V]) len() int {
	switch {
	case sm.d == nil:
		return 0
	case sm.d.m != nil:
		return len(sm.d.m)
	}
	return len(sm.d.s)
}

func (sm *smallMap[K, V]) get(k K) (V, bool) {
	var zero V
	d := sm.d
	if d == nil {
		return zero, false
	}
	if d.m != nil {
		v, ok := d.m[k]
		return v, ok
	}
	for i := range d.s {
		if d.s[i].k == k {
			return d.s[i].v, true
		}
	}
	return zero, false
}

func (sm *smallMap[K, V]) put(k K, v V) {
	if sm.d == nil {
		sm.d = &smallMapData[K, V]{s: make([]smallMapEntry[K, V], 0, 1)}
	}
	d := sm.d
	if d.m != nil {
		d.m[k] = v
		return
	}
	for i := range d.s {
		if d.s[i].k == k {
			d.s[i].v = v
			return
		}
	}
	if len(d.s) < smallMapMax {
		d.s = append(d.s, smallMapEntry[K, V]{k, v})
		return
	}
	d.m = make(map[K]V, 2*smallMapMax)
	for _, e := range d.s {
		d.m[e.k] = e.v
	}
	d.s = nil
	d.m[k] = v
}

// del removes k and returns its value.
func (sm *smallMap[K, V]) del(k K) (V, bool) {
	var zero V
	d := sm.d
	if d == nil {
		return zero, false
	}
	if d.m != nil {
		v, ok := d.m[k]
		delete(d.m, k)
		return v, ok
	}
	for i := range d.s {
		if d.s[i].k == k {
			v := d.s[i].v
			last := len(d.s) - 1
			d.s[i] = d.s[last]
			d.s[last] = smallMapEntry[K, V]{}
			d.s = d.s[:last]
			return v, true
		}
	}
	return zero, false
}

// each calls f for every entry, in no particular order.
func (sm *smallMap[K, V]) each(f func(K, V)) {
	d := sm.d
	if d == nil {
		return
	}
	if d.m != nil {
		for k, v := range d.m {
			f(k, v)
		}
		return
	}
	for _, e := range d.s {
		f(e.k, e.v)
	}
}
