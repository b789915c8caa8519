package emperor

import (
	"errors"

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
	// Warnings are accepted-and-ignored options and the like.
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
// user is a config error here and not a crash loop later.
func CheckVassal(path string, content []byte) (*Loaded, error) {
	f, err := vassalfile.Parse(path, content, vassalfile.ParseOptions{})
	if err != nil {
		return nil, err
	}
	spec, err := vassalfile.Decode(f)
	if err != nil {
		return nil, err
	}
	if _, err := userdb.Resolve(spec.CredsRequest()); err != nil {
		return nil, vassalfile.Errors{credsDiag(f, err)}
	}
	rf, err := vassalfile.Parse(path, content, vassalfile.ParseOptions{Reload: true})
	if err != nil {
		return nil, err
	}
	if _, err := vassalfile.Decode(rf); err != nil {
		return nil, err
	}
	return &Loaded{Name: vassalfile.NameOf(path), Path: path, Content: content, File: f, Spec: spec, Warnings: f.Warnings}, nil
}

// credsDiag places a credentials error on the line of the option it names
// (uid, gid or add-gid).
func credsDiag(f *vassalfile.File, err error) vassalfile.Diag {
	d := vassalfile.Diag{File: f.Path, Message: err.Error()}
	var ce *userdb.CredsError
	if errors.As(err, &ce) {
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
	}
	return d
}
