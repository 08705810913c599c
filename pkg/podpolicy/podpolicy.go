// Package podpolicy lists what a Stow object asks of the pods Stow creates
// beyond a PodSecurity "restricted" pod: root or another uid, privilege,
// capabilities, node volumes, another ServiceAccount, node placement, a
// command of the user's choosing. Stow runs its Jobs with the operator's
// rights, so each such ask must come from someone who may create such a pod
// in that namespace themselves (docs/security.md).
//
// The rules are data (a JSON field path and a test), so that the same table
// drives the operator's check (Asks, on the object's JSON form) and the
// admission policy's CEL (CEL, generated into deploy/admission-policy.yaml by
// hack/gen-admission): the two cannot drift.
package podpolicy

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
)

// Resources the rules apply to (plural names, as in RBAC and admission).
const (
	BackupConfigurations = "backupconfigurations"
	RestoreSessions      = "restoresessions"
	Repositories         = "repositories"
	Tasks                = "tasks"
	Functions            = "functions"
)

// Group, Resource and Verb of the Stow permission an admin grants instead of
// pod rights: verb "use" on "podsettings.stow.dev", optionally limited to
// one Class with resourceNames.
const (
	PermissionGroup    = "stow.dev"
	PermissionResource = "podsettings"
	PermissionVerb     = "use"
)

// Class groups asks so that an admin can grant some and not others
// (resourceNames of the "use podsettings" rule).
type Class string

const (
	// Identity: a uid, gid or supplementary group of the user's choice, or root.
	Identity Class = "identity"
	// Privileged: privileged containers, privilege escalation, added
	// capabilities, unconfined seccomp/AppArmor, SELinux options, sysctls,
	// procMount, host ports.
	Privileged Class = "privileged"
	// HostVolume: a hostPath volume (a directory of the node).
	HostVolume Class = "host-volume"
	// ServiceAccount: another ServiceAccount, or its token in the pod.
	ServiceAccount Class = "serviceaccount"
	// Placement: a fixed node (bypassing the scheduler) or tolerations.
	Placement Class = "placement"
	// Command: a command of the user's choosing runs in the pods that use
	// the target PVC (exec hook; those pods must consent too, docs/hooks.md).
	Command Class = "command"
)

// Classes lists every Class an admin may grant with the Stow permission, for
// documentation and the admission policy.
var Classes = []Class{Identity, Privileged, HostVolume, ServiceAccount, Placement, Command}

// Classes of references: a field naming a Secret or ConfigMap of the
// namespace that the Job's pod, made with the operator's rights, would read
// (an environment variable, envFrom, a volume, an image pull secret). The
// Stow permission does not grant them: the writer must be able to get that
// very object (or create pods, which can read it anyway).
const (
	// Secrets: a Secret the pod reads.
	Secrets Class = "secrets"
	// ConfigMaps: a ConfigMap the pod reads.
	ConfigMaps Class = "configmaps"
)

// Ref says which object a reference rule's field names.
type Ref struct {
	// Resource is "secrets" or "configmaps" (core API group).
	Resource string
	// Name is the field holding the object's name, relative to the rule's
	// field; "" when the rule's field is the name itself.
	Name string
}

// Kind is the object's kind, for messages.
func (r Ref) Kind() string {
	if r.Resource == "configmaps" {
		return "ConfigMap"
	}
	return "Secret"
}

// Test is what makes a field an ask.
type Test int

const (
	// Present: the field is set, whatever its value.
	Present Test = iota
	// True: the field is the boolean true.
	True
	// False: the field is the boolean false.
	False
	// NonEmpty: the list or string is non-empty.
	NonEmpty
	// Positive: the number is > 0.
	Positive
	// Unconfined: the field is the string "Unconfined".
	Unconfined
	// NotDefault: the string is set to something other than "Default".
	NotDefault
)

// Rule is one field that asks for more than a restricted pod.
type Rule struct {
	// Resource is the plural resource the field belongs to.
	Resource string
	// Path is the field's JSON path; "[]" after a list name means "any item".
	Path  string
	Test  Test
	Class Class
	// What says in a few words what the field asks for.
	What string
	// Ref is set when the field names a Secret or ConfigMap (Class Secrets
	// or ConfigMaps): the writer must be able to get it, or create pods.
	Ref *Ref
	// AdmissionOnly rules are checked by the admission policy alone, not
	// again by the operator (pkg/controller/podguard): every object of the
	// resource has the field, so the operator, which cannot tell who wrote
	// an object, would refuse every one written before the policy (and
	// all of them with --pod-settings=refuse or without the policy).
	AdmissionOnly bool
}

// Field is the Path as users write it, without the [] markers.
func (r Rule) Field() string { return strings.ReplaceAll(r.Path, "[]", "[*]") }

// scField is a securityContext field that asks, relative to the context.
type scField struct {
	path  string
	test  Test
	class Class
	what  string
}

// podSC are the pod securityContext fields that ask.
var podSC = []scField{
	{"runAsUser", Present, Identity, "a user id of its own choice (0 is root)"},
	{"runAsGroup", Present, Identity, "a group id of its own choice"},
	{"fsGroup", Present, Identity, "a group that owns the volumes"},
	{"supplementalGroups", NonEmpty, Identity, "supplementary groups"},
	{"runAsNonRoot", False, Identity, "permission to run as root"},
	{"seLinuxOptions", Present, Privileged, "an SELinux label"},
	{"sysctls", NonEmpty, Privileged, "kernel parameters"},
	{"seccompProfile.type", Unconfined, Privileged, "no seccomp confinement"},
	{"appArmorProfile.type", Unconfined, Privileged, "no AppArmor confinement"},
}

// containerSC are the container securityContext fields that ask.
var containerSC = []scField{
	{"runAsUser", Present, Identity, "a user id of its own choice (0 is root)"},
	{"runAsGroup", Present, Identity, "a group id of its own choice"},
	{"runAsNonRoot", False, Identity, "permission to run as root"},
	{"privileged", True, Privileged, "a privileged container"},
	{"allowPrivilegeEscalation", True, Privileged, "privilege escalation"},
	{"capabilities.add", NonEmpty, Privileged, "added capabilities"},
	{"procMount", NotDefault, Privileged, "an unmasked /proc"},
	{"seLinuxOptions", Present, Privileged, "an SELinux label"},
	{"seccompProfile.type", Unconfined, Privileged, "no seccomp confinement"},
	{"appArmorProfile.type", Unconfined, Privileged, "no AppArmor confinement"},
}

// envRefs are the fields of container settings (env, envFrom) that name a
// Secret or ConfigMap, relative to the settings.
var envRefs = []struct {
	path string
	ref  Ref
	what string
}{
	{"env[].valueFrom.secretKeyRef", Ref{Resource: "secrets", Name: "name"}, "a Secret's value in an environment variable"},
	{"env[].valueFrom.configMapKeyRef", Ref{Resource: "configmaps", Name: "name"}, "a ConfigMap's value in an environment variable"},
	{"envFrom[].secretRef", Ref{Resource: "secrets", Name: "name"}, "a Secret's values as environment variables"},
	{"envFrom[].configMapRef", Ref{Resource: "configmaps", Name: "name"}, "a ConfigMap's values as environment variables"},
}

// volumeRefs are the fields of a volume source that name a Secret or
// ConfigMap, relative to the source.
var volumeRefs = []struct {
	path string
	ref  Ref
	what string
}{
	{"secret", Ref{Resource: "secrets", Name: "secretName"}, "a Secret as files"},
	{"configMap", Ref{Resource: "configmaps", Name: "name"}, "a ConfigMap as files"},
	{"projected.sources[].secret", Ref{Resource: "secrets", Name: "name"}, "a Secret as files"},
	{"projected.sources[].configMap", Ref{Resource: "configmaps", Name: "name"}, "a ConfigMap as files"},
	{"csi.nodePublishSecretRef", Ref{Resource: "secrets", Name: "name"}, "a Secret for the volume driver"},
	{"azureFile", Ref{Resource: "secrets", Name: "secretName"}, "a Secret for the volume driver"},
	{"cephfs.secretRef", Ref{Resource: "secrets", Name: "name"}, "a Secret for the volume driver"},
	{"cinder.secretRef", Ref{Resource: "secrets", Name: "name"}, "a Secret for the volume driver"},
	{"flexVolume.secretRef", Ref{Resource: "secrets", Name: "name"}, "a Secret for the volume driver"},
	{"iscsi.secretRef", Ref{Resource: "secrets", Name: "name"}, "a Secret for the volume driver"},
	{"rbd.secretRef", Ref{Resource: "secrets", Name: "name"}, "a Secret for the volume driver"},
	{"scaleIO.secretRef", Ref{Resource: "secrets", Name: "name"}, "a Secret for the volume driver"},
	{"storageos.secretRef", Ref{Resource: "secrets", Name: "name"}, "a Secret for the volume driver"},
}

// Rules is the whole table, in a stable order.
var Rules = buildRules()

func buildRules() []Rule {
	var out []Rule
	add := func(res, path string, t Test, c Class, what string) {
		out = append(out, Rule{Resource: res, Path: path, Test: t, Class: c, What: what})
	}
	addRef := func(res, path string, ref Ref, what string) {
		out = append(out, Rule{Resource: res, Path: path, Test: Present, Class: Class(ref.Resource), What: what, Ref: &ref})
	}
	// volume adds the asks of a volume source at prefix: a node directory,
	// a node-side git clone, the pod's ServiceAccount token, Secrets and
	// ConfigMaps.
	volume := func(res, prefix string) {
		add(res, prefix+"hostPath", Present, HostVolume, "a directory of the node")
		add(res, prefix+"gitRepo", Present, Privileged, "a git clone made by the node")
		add(res, prefix+"projected.sources[].serviceAccountToken", Present, ServiceAccount, "a ServiceAccount token in the pod")
		for _, v := range volumeRefs {
			addRef(res, prefix+v.path, v.ref, v.what)
		}
	}
	for _, res := range []string{BackupConfigurations, RestoreSessions} {
		for _, f := range podSC {
			add(res, "spec.runtimeSettings.pod.securityContext."+f.path, f.test, f.class, f.what)
		}
		for _, f := range containerSC {
			add(res, "spec.runtimeSettings.container.securityContext."+f.path, f.test, f.class, f.what)
		}
		add(res, "spec.runtimeSettings.pod.serviceAccountName", Present, ServiceAccount, "another ServiceAccount")
		add(res, "spec.runtimeSettings.pod.automountServiceAccountToken", True, ServiceAccount, "a ServiceAccount token in the pod")
		add(res, "spec.runtimeSettings.pod.nodeName", Present, Placement, "a node, bypassing the scheduler")
		add(res, "spec.runtimeSettings.pod.tolerations", NonEmpty, Placement, "tolerations of node taints")
		for _, e := range envRefs {
			addRef(res, "spec.runtimeSettings.container."+e.path, e.ref, e.what)
		}
		addRef(res, "spec.runtimeSettings.pod.imagePullSecrets[]", Ref{Resource: "secrets", Name: "name"}, "a Secret's registry credentials")
	}
	for _, h := range []string{"preBackup", "postBackup"} {
		add(BackupConfigurations, "spec.hooks."+h+".exec", Present, Command, "a command of its own in the pods using the target PVC")
	}
	for _, h := range []string{"preRestore", "postRestore"} {
		add(RestoreSessions, "spec.hooks."+h+".exec", Present, Command, "a command of its own in the pods using the target PVC")
	}
	// A Repository's own storage Secret: its credentials go to whatever
	// backend the Repository names, a server of the writer's choosing
	// (a REST backend gets REST_SERVER_* as basic auth).
	out = append(out, Rule{Resource: Repositories, Path: "spec.backend.storageSecretName", Test: NonEmpty, Class: Secrets,
		What: "the backend credentials of its storage Secret", Ref: &Ref{Resource: "secrets"}, AdmissionOnly: true})
	volume(Repositories, "spec.backend.local.")
	volume(Tasks, "spec.volumes[].")
	for _, f := range containerSC {
		add(Functions, "spec.runtimeSettings.securityContext."+f.path, f.test, f.class, f.what)
	}
	add(Functions, "spec.ports[].hostPort", Positive, Privileged, "a port of the node")
	for _, e := range envRefs {
		addRef(Functions, "spec.runtimeSettings."+e.path, e.ref, e.what)
	}
	return out
}

// RulesFor returns the rules of one resource.
func RulesFor(resource string) []Rule {
	var out []Rule
	for _, r := range Rules {
		if r.Resource == resource {
			out = append(out, r)
		}
	}
	return out
}

// Ask is one field of an object that asks for more than a restricted pod.
type Ask struct {
	Rule
	// Names are the Secrets or ConfigMaps a reference rule's field names.
	Names []string
}

// String names the field and what it asks for.
func (a Ask) String() string {
	if a.Ref != nil && len(a.Names) > 0 {
		return fmt.Sprintf("%s asks for %s (%s %s) (%s)", a.Field(), a.What, a.Ref.Kind(), strings.Join(a.Names, ", "), a.Class)
	}
	return fmt.Sprintf("%s asks for %s (%s)", a.Field(), a.What, a.Class)
}

// Asks returns the asks of obj, a Stow object of the given resource (typed
// or unstructured; it is read through its JSON form, as admission sees it).
// Every rule's path is under spec, so only the spec is read: a status can be
// large (a Repository's references) and is read on every check.
func Asks(resource string, obj any) ([]Ask, error) {
	b, err := json.Marshal(specOf(obj))
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	var out []Ask
	for _, r := range RulesFor(resource) {
		path := strings.Split(r.Path, ".")
		if !match(m, path, r.Test) {
			continue
		}
		a := Ask{Rule: r}
		if r.Ref != nil {
			a.Names = refNames(m, path, r.Ref.Name, nil)
		}
		out = append(out, a)
	}
	return out, nil
}

// refNames collects the names (field name of the objects at path) that the
// objects at path in v hold, in order and without repeats; an object
// without a name is listed as "".
func refNames(v any, path []string, name string, out []string) []string {
	if len(path) == 0 {
		n, _ := v.(string)
		if name != "" {
			m, _ := v.(map[string]any)
			n, _ = m[name].(string)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
		return out
	}
	m, ok := v.(map[string]any)
	if !ok {
		return out
	}
	seg := path[0]
	if list, ok := strings.CutSuffix(seg, "[]"); ok {
		items, _ := m[list].([]any)
		for _, item := range items {
			out = refNames(item, path[1:], name, out)
		}
		return out
	}
	if next, ok := m[seg]; ok && next != nil {
		return refNames(next, path[1:], name, out)
	}
	return out
}

// Classes returns the distinct classes of asks, sorted.
func ClassesOf(asks []Ask) []Class {
	seen := map[Class]bool{}
	var out []Class
	for _, a := range asks {
		if !seen[a.Class] {
			seen[a.Class] = true
			out = append(out, a.Class)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func match(v any, path []string, t Test) bool {
	if len(path) == 0 {
		return test(v, t)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	seg := path[0]
	if name, ok := strings.CutSuffix(seg, "[]"); ok {
		list, _ := m[name].([]any)
		for _, item := range list {
			if match(item, path[1:], t) {
				return true
			}
		}
		return false
	}
	next, ok := m[seg]
	if !ok || next == nil {
		return false
	}
	return match(next, path[1:], t)
}

func test(v any, t Test) bool {
	switch t {
	case Present:
		return true
	case True:
		b, ok := v.(bool)
		return ok && b
	case False:
		b, ok := v.(bool)
		return ok && !b
	case NonEmpty:
		switch x := v.(type) {
		case []any:
			return len(x) > 0
		case string:
			return x != ""
		}
		return false
	case Positive:
		switch n := v.(type) {
		case float64:
			return n > 0
		case int64:
			return n > 0
		}
		return false
	case Unconfined:
		s, ok := v.(string)
		return ok && s == "Unconfined"
	case NotDefault:
		s, ok := v.(string)
		return ok && s != "" && s != "Default"
	}
	return false
}

// CEL returns the CEL expression that is true when the object under
// admission (variable "object") has the rule's ask. It mirrors match: every
// step is guarded by has(), a "[]" step by exists().
func (r Rule) CEL() string {
	return celPath("object", strings.Split(r.Path, "."), func(v string) string { return celTest(v, r.Test) }, 0)
}

// deniedCEL is, for a reference rule, the CEL expression that is true when
// the object names a Secret or ConfigMap the requesting user may not get.
func (r Rule) deniedCEL() string {
	return celPath("object", strings.Split(r.Path, "."), func(v string) string { return "!" + r.mayGet(v) }, 0)
}

// mayGet is the authorizer check that the user may get the object that the
// reference at v names: in the request's namespace, or in every namespace
// for a cluster-scoped object (a Task's or Function's reference is
// resolved in each session's namespace). The API server allows two such
// checks per expression (each costs 350000 of 1000000); the policy's
// variable may_get_<resource> (get on every one) spares them.
func (r Rule) mayGet(v string) string {
	name := v
	if r.Ref.Name != "" {
		name = fmt.Sprintf("(has(%s.%s) ? %s.%s : '')", v, r.Ref.Name, v, r.Ref.Name)
	}
	return inNamespace(fmt.Sprintf("authorizer.group('').resource('%s')", r.Ref.Resource), fmt.Sprintf(".name(%s).check('get').allowed()", name))
}

// namesCEL is, for a reference rule with one list step, the CEL expression
// listing the names its field holds ("a, b", "" when it holds none); "" for
// other rules. It does not use the authorizer: the API server evaluates
// message expressions without one.
func (r Rule) namesCEL() string {
	path := strings.Split(r.Path, ".")
	list := -1
	for i, seg := range path {
		if strings.HasSuffix(seg, "[]") {
			if list >= 0 {
				return ""
			}
			list = i
		}
	}
	if list < 0 {
		return ""
	}
	items := "object." + strings.Join(append(path[:list:list], strings.TrimSuffix(path[list], "[]")), ".")
	ref := strings.Join(append([]string{"x0"}, path[list+1:]...), ".")
	present := celPath("x0", path[list+1:], func(v string) string { return celTest(v, Present) }, 1)
	return fmt.Sprintf("(%s ? %s.filter(x0, %s).map(x0, has(%s.%s) ? %s.%s : '').join(', ') : '')", r.CEL(), items, present, ref, r.Ref.Name, ref, r.Ref.Name)
}

func celPath(root string, path []string, leaf func(string) string, depth int) string {
	if len(path) == 0 {
		return leaf(root)
	}
	seg := path[0]
	if name, ok := strings.CutSuffix(seg, "[]"); ok {
		v := fmt.Sprintf("x%d", depth)
		return fmt.Sprintf("has(%s.%s) && %s.%s.exists(%s, %s)", root, name, root, name, v, celPath(v, path[1:], leaf, depth+1))
	}
	field := root + "." + seg
	rest := celPath(field, path[1:], leaf, depth)
	if rest == "true" {
		return "has(" + field + ")"
	}
	return "has(" + field + ") && " + rest
}

func celTest(v string, t Test) string {
	switch t {
	case True:
		return v + " == true"
	case False:
		return v + " == false"
	case NonEmpty:
		return "size(" + v + ") > 0"
	case Positive:
		return v + " > 0"
	case Unconfined:
		return v + " == 'Unconfined'"
	case NotDefault:
		return v + " != 'Default'"
	}
	return "true"
}

// specOf returns obj with only its spec: {"spec": obj.Spec} for a typed
// object (a struct, or pointer to one, with a Spec field), obj["spec"] of a
// map or unstructured object, else obj itself.
func specOf(obj any) any {
	switch o := obj.(type) {
	case map[string]any:
		return map[string]any{"spec": o["spec"]}
	case interface{ UnstructuredContent() map[string]any }:
		return map[string]any{"spec": o.UnstructuredContent()["spec"]}
	}
	v := reflect.ValueOf(obj)
	for v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	if v.Kind() == reflect.Struct {
		if f := v.FieldByName("Spec"); f.IsValid() && f.CanInterface() {
			return map[string]any{"spec": f.Interface()}
		}
	}
	return obj
}
