package emperor

import (
	"github.com/emperor-dev/emperor/userdb"
	"github.com/emperor-dev/emperor/vassalfile"
)

// Loaded is a vassal file that passed every check the emperor makes before
// it spawns or reloads a vassal.
type Loaded struct {
	Name    string
	Path    string
	Content []byte // sent to the vassal, which may no longer see the host's file after pivot_root
	File    *vassalfile.File
	Spec    *vassalfile.Spec
	// Warnings are accepted-and-ignored options and the like, sorted by
	// line.
	Warnings []vassalfile.Diag
}

// LoadVassal reads path and validates it. The error is a vassalfile.Errors
// with one file:line diagnostic per problem.
func LoadVassal(path string) (*Loaded, error) {
	content, err := vassalfile.ReadFile(path)
	if err != nil {
		return nil, vassalfile.Errors{{File: path, Message: err.Error()}}
	}
	return CheckVassal(path, content)
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
func CheckVassal(path string, content []byte) (*Loaded, error) {
	var lists [][]vassalfile.Diag
	var f *vassalfile.File
	var spec *vassalfile.Spec
	for _, reload := range []bool{false, true} {
		pf, err := vassalfile.Parse(path, content, vassalfile.ParseOptions{Reload: reload})
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
			lists = append(lists, []vassalfile.Diag{credsDiag(f, err)})
		}
	}
	if spec != nil {
		lists = append(lists, checkAppServer(path, spec))
	}
	all := vassalfile.Merge(lists...)
	if all.HasErrors() {
		return nil, all
	}
	return &Loaded{Name: vassalfile.NameOf(path), Path: path, Content: content, File: f, Spec: spec, Warnings: all.Warnings()}, nil
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
