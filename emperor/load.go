package emperor

import (
	"sort"

	"github.com/emperor-dev/emperor/control"

	"github.com/emperor-dev/emperor/userdb"
	"github.com/emperor-dev/emperor/vassalfile"
)

// Loaded is a vassal file that passed every check the emperor makes before
// it spawns or reloads a vassal.
type Loaded struct {
	Name    string
	Path    string
	Content []byte // sent to the vassal, which may no longer see the host's file after pivot_root
	// Files are the files the vassal file named and that were read, with
	// its owner's credentials (included files, @(file), for-readline), by
	// path: sent with Content, the vassal's PID 1 reads only these.
	Files map[string][]byte
	// Owner is the vassal file's owner, whose credentials read those files
	// and test its paths (nil: the emperor's own).
	Owner *vassalfile.FileOwner
	File  *vassalfile.File
	Spec  *vassalfile.Spec
	// Warnings are accepted-and-ignored options and the like, sorted by
	// line.
	Warnings []vassalfile.Diag
}

// LoadVassal reads path and validates it. The error is a vassalfile.Errors
// with one file:line diagnostic per problem.
func LoadVassal(path string) (*Loaded, error) {
	content, fi, err := vassalfile.ReadFileStat(path)
	if err != nil {
		return nil, vassalfile.Errors{{File: path, Message: err.Error()}}
	}
	return CheckVassal(path, content, vassalfile.OwnerOf(fi))
}

// reads are the files that the checks of one vassal file read (both
// parses see the same content), and every path they tried, read or not:
// a change to any of them is a change of the vassal (see fileState.deps).
type reads struct {
	owner *vassalfile.FileOwner
	files map[string][]byte
	tried []string
	errs  map[string]error
}

func (r *reads) read(path string) ([]byte, error) {
	if b, ok := r.files[path]; ok {
		return b, nil
	}
	if err, ok := r.errs[path]; ok {
		return nil, err
	}
	r.tried = append(r.tried, path)
	b, err := vassalfile.ReadAs(r.owner, path)
	if err != nil {
		r.errs[path] = err
		return nil, err
	}
	r.files[path] = b
	return b, nil
}

// CheckVassal validates content as the vassal file at path: parsed for a
// first start and for a reload (if-reload blocks differ), decoded, and with
// its users and groups resolved in the host's database, so that an unknown
// user is a config error here and not a crash loop later; a vassal with an
// app has its lines for uWSGI checked against the installed uwsgi.
//
// Every check runs, whatever the ones before it found, so that one run
// reports every problem of the file: the error is a vassalfile.Errors of
// all of them, errors and warnings, sorted by line (vassalfile.Merge).
//
// The files the vassal file names are read with the credentials of owner,
// the vassal file's owner (nil: the emperor's own).
func CheckVassal(path string, content []byte, owner *vassalfile.FileOwner) (*Loaded, error) {
	v, _, err := checkVassal(path, content, owner)
	return v, err
}

func checkVassal(path string, content []byte, owner *vassalfile.FileOwner) (*Loaded, *reads, error) {
	rd := &reads{owner: owner, files: map[string][]byte{}, errs: map[string]error{}}
	var lists [][]vassalfile.Diag
	var f *vassalfile.File
	var spec *vassalfile.Spec
	for _, reload := range []bool{false, true} {
		pf, err := vassalfile.Parse(path, content, vassalfile.ParseOptions{Reload: reload, ReadFile: rd.read, Owner: owner})
		lists = append(lists, vassalfile.DiagsOf(path, err))
		if pf == nil {
			break // the file as a whole was refused (its size): nothing was read
		}
		lists = append(lists, pf.Warnings)
		s, err := vassalfile.Decode(pf)
		lists = append(lists, vassalfile.DiagsOf(path, err))
		if !reload {
			f, spec = pf, s
		}
	}
	if spec != nil {
		for _, err := range userdb.Check(spec.CredsRequest()) {
			lists = append(lists, f.Locate([]vassalfile.Diag{credsDiag(f, err)}))
		}
	}
	if spec != nil {
		lists = append(lists, f.Locate(checkAppServer(path, spec)))
	}
	all := vassalfile.Merge(lists...)
	if all.HasErrors() {
		return nil, rd, all
	}
	return &Loaded{Name: vassalfile.NameOf(path), Path: path, Content: content, Files: rd.files, Owner: owner, File: f, Spec: spec, Warnings: all.Warnings()}, rd, nil
}

// credsDiag places a credentials error on the line of the option it names
// (uid, gid or add-gid).
func credsDiag(f *vassalfile.File, ce *userdb.CredsError) vassalfile.Diag {
	d := vassalfile.Diag{File: f.Path, Message: ce.Error()}
	if e, ok := f.Last(ce.Option); ok {
		d.Line = e.Line
	}
	if ce.Option == "add-gid" {
		for _, e := range f.All("add-gid") {
			if e.Value == ce.Value {
				d.Line = e.Line
			}
		}
	}
	return d
}

// checkAppServer checks the lines a vassal with an app hands to uWSGI's app
// server against the installed uwsgi and its plugins (see
// vassalfile.CheckAppServer): an option it does not know or a plugin it
// lacks is a config error here, not an app server that exits at start.
func checkAppServer(path string, spec *vassalfile.Spec) []vassalfile.Diag {
	return vassalfile.CheckAppServer(path, spec.App)
}

// reads lists the files the vassal file read besides itself (see
// control.VassalStatus.Reads); nil for nil.
func (v *Loaded) reads() []string {
	if v == nil || v.File == nil {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	for _, src := range v.File.Sources[min(1, len(v.File.Sources)):] {
		name := src.Path
		if src.Section != "uwsgi" {
			name += ":" + src.Section
		}
		if !seen[name] {
			seen[name], seen[src.Path] = true, true
			out = append(out, name)
		}
	}
	var data []string
	for p := range v.Files {
		if !seen[p] {
			data = append(data, p)
		}
	}
	sort.Strings(data)
	return append(out, data...)
}

// controlOwner is the owner as PID 1 gets it.
func (v *Loaded) controlOwner() *control.Owner {
	if v == nil || v.Owner == nil {
		return nil
	}
	return &control.Owner{UID: v.Owner.UID, GID: v.Owner.GID}
}
