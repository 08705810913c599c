// Package lenient builds the operator's Stow clientset with a decoder that
// isolates objects it cannot read.
//
// client-go decodes a List as one JSON document: a single object with a
// value its Go type refuses (an int32 out of range, a time or quantity in a
// form the CRD schema let through, a schema loosened and tightened again)
// fails the whole List, so the informer of that kind never syncs and no
// object of the kind is reconciled anywhere in the cluster. The decoder here
// decodes such a List item by item instead. An item that still fails becomes
// a stand-in: its metadata, its status when that part decodes, an empty
// spec, and the annotation AnnotationDecodeError naming the cause. The
// controllers end the stand-in Invalid (v1beta1.DecodeError) and never act on
// its empty spec; every other object is reconciled as usual. Watch events
// carry one object each and are handled the same way.
package lenient

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/client/clientset/versioned"
	stowscheme "github.com/stowhq/stow/client/clientset/versioned/scheme"
)

// NewClientset is versioned.NewForConfig with the lenient decoder.
func NewClientset(cfg *rest.Config) (*versioned.Clientset, error) {
	c := rest.CopyConfig(cfg)
	gv := v1beta1.SchemeGroupVersion
	c.GroupVersion = &gv
	c.APIPath = "/apis"
	c.NegotiatedSerializer = Serializer{stowscheme.Codecs.WithoutConversion()}
	// JSON only: the stand-in is built from the JSON text.
	c.ContentType, c.AcceptContentTypes = runtime.ContentTypeJSON, runtime.ContentTypeJSON
	if c.UserAgent == "" {
		c.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	rc, err := rest.RESTClientFor(c)
	if err != nil {
		return nil, err
	}
	return versioned.New(rc), nil
}

// Serializer wraps a NegotiatedSerializer so every decoder it hands out is lenient.
type Serializer struct {
	runtime.NegotiatedSerializer
}

// DecoderToVersion returns the wrapped decoder, made lenient.
func (s Serializer) DecoderToVersion(d runtime.Decoder, gv runtime.GroupVersioner) runtime.Decoder {
	return Decoder{Inner: s.NegotiatedSerializer.DecoderToVersion(d, gv), Scheme: stowscheme.Scheme}
}

// Decoder decodes with Inner and, when that fails on a Stow object or list,
// isolates the objects that cannot be read (see the package comment).
type Decoder struct {
	Inner  runtime.Decoder
	Scheme *runtime.Scheme
}

// Decode implements runtime.Decoder.
func (d Decoder) Decode(data []byte, defaults *schema.GroupVersionKind, into runtime.Object) (runtime.Object, *schema.GroupVersionKind, error) {
	obj, gvk, err := d.Inner.Decode(data, defaults, into)
	if err == nil {
		return obj, gvk, nil
	}
	var tm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if json.Unmarshal(data, &tm) != nil {
		return obj, gvk, err
	}
	gv, perr := schema.ParseGroupVersion(tm.APIVersion)
	if perr != nil || gv.Group != v1beta1.GroupName || tm.Kind == "" {
		return obj, gvk, err // not ours (a Status, a foreign kind): as is
	}
	got := gv.WithKind(tm.Kind)
	if into == nil {
		n, nerr := d.Scheme.New(got)
		if nerr != nil {
			return obj, gvk, err
		}
		into = n
	}
	if meta.IsListType(into) {
		if lerr := d.decodeList(data, got, into); lerr != nil {
			return obj, gvk, err
		}
		return into, &got, nil
	}
	if serr := d.standIn(data, got, into, err); serr != nil {
		return obj, gvk, err
	}
	return into, &got, nil
}

// decodeList fills list from data one item at a time.
func (d Decoder) decodeList(data []byte, gvk schema.GroupVersionKind, list runtime.Object) error {
	var raw struct {
		Metadata json.RawMessage   `json:"metadata"`
		Items    []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	itemGVK := gvk.GroupVersion().WithKind(strings.TrimSuffix(gvk.Kind, "List"))
	zero(list)
	// The list's own metadata (resourceVersion, continue) decodes on its own.
	head, _ := json.Marshal(map[string]json.RawMessage{"metadata": raw.Metadata})
	if _, _, err := d.Inner.Decode(head, &gvk, list); err != nil {
		return err
	}
	items := make([]runtime.Object, 0, len(raw.Items))
	for _, it := range raw.Items {
		obj, err := d.Scheme.New(itemGVK)
		if err != nil {
			return err
		}
		if _, _, derr := d.Inner.Decode(it, &itemGVK, obj); derr != nil {
			if err := d.standIn(it, itemGVK, obj, derr); err != nil {
				return err
			}
		}
		items = append(items, obj)
	}
	return meta.SetList(list, items)
}

// standIn resets obj to the stand-in of the object in data that failed to
// decode with cause: metadata, status if it decodes, and the annotation.
func (d Decoder) standIn(data []byte, gvk schema.GroupVersionKind, obj runtime.Object, cause error) error {
	var parts map[string]json.RawMessage
	if err := json.Unmarshal(data, &parts); err != nil {
		return err
	}
	build := func(keys ...string) error {
		m := map[string]json.RawMessage{}
		for _, k := range keys {
			if v, ok := parts[k]; ok {
				m[k] = v
			}
		}
		b, err := json.Marshal(m)
		if err != nil {
			return err
		}
		zero(obj)
		_, _, err = d.Inner.Decode(b, &gvk, obj)
		return err
	}
	if err := build("metadata", "status"); err != nil {
		if err := build("metadata"); err != nil {
			return err // not even the metadata: give up, the List fails as before
		}
	}
	acc, err := meta.Accessor(obj)
	if err != nil {
		return err
	}
	ann := acc.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	where := ""
	if f := d.locate(data, gvk); f != "" {
		where = " (field " + f + ")"
	}
	ann[v1beta1.AnnotationDecodeError] = fmt.Sprintf("the stored %s cannot be read%s: %v", gvk.Kind, where, cause)
	acc.SetAnnotations(ann)
	return nil
}

// locate names the field that makes data fail to decode: the innermost
// value whose removal lets the rest decode. Errors of custom decoders (a
// time, a quantity) do not say where they are; the user needs to know.
func (d Decoder) locate(data []byte, gvk schema.GroupVersionKind) string {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc interface{}
	if dec.Decode(&doc) != nil {
		return ""
	}
	decodes := func() bool {
		b, err := json.Marshal(doc)
		if err != nil {
			return false
		}
		obj, err := d.Scheme.New(gvk)
		if err != nil {
			return false
		}
		_, _, err = d.Inner.Decode(b, &gvk, obj)
		return err == nil
	}
	var path []string
	cur := doc
	for depth := 0; depth < 64; depth++ {
		found := false
		switch v := cur.(type) {
		case map[string]interface{}:
			keys := make([]string, 0, len(v))
			for k := range v {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				saved := v[k]
				delete(v, k)
				ok := decodes()
				v[k] = saved
				if ok {
					path, cur, found = append(path, "."+k), saved, true
					break
				}
			}
		case []interface{}:
			for i := range v {
				saved := v[i]
				v[i] = nil
				ok := decodes()
				v[i] = saved
				if ok {
					path, cur, found = append(path, fmt.Sprintf("[%d]", i)), saved, true
					break
				}
			}
		}
		if !found {
			break
		}
	}
	return strings.TrimPrefix(strings.Join(path, ""), ".")
}

// zero resets the struct obj points to.
func zero(obj runtime.Object) {
	v := reflect.ValueOf(obj).Elem()
	v.Set(reflect.Zero(v.Type()))
}
