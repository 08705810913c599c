package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// AnnotationDecodeError marks, in the operator's cache only, an object the
// operator could not decode (pkg/lenient): the cached copy is a stand-in
// holding the metadata (and status when readable) but no spec. It is never
// written back: status updates ignore metadata, and the operator changes
// metadata only with merge patches of finalizers.
const AnnotationDecodeError = "stow.dev/decode-error"

// ResourceUnreadable is the reason of ValidationPassed=False on an object
// the operator could not decode: it is Invalid whatever else is missing.
const ResourceUnreadable = "ResourceUnreadable"

// DecodeError returns why the stored object could not be read, or "".
func DecodeError(obj metav1.Object) string {
	return obj.GetAnnotations()[AnnotationDecodeError]
}

// durationField is a Duration of a spec and its path, for decodeErrors.
// +k8s:deepcopy-gen=false
type durationField struct {
	path *field.Path
	d    *Duration
}

// decodeErrors reports an unreadable object, or a Duration field that did
// not parse, as validation errors naming the field: the object ends Invalid
// and nothing runs for it.
func decodeErrors(obj metav1.Object, durations ...durationField) field.ErrorList {
	var errs field.ErrorList
	if msg := DecodeError(obj); msg != "" {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "annotations").Key(AnnotationDecodeError), field.OmitValueType{}, msg))
	}
	for _, f := range durations {
		if err := f.d.Err(); err != nil {
			errs = append(errs, field.Invalid(f.path, f.d.raw, err.Error()))
		}
	}
	return errs
}
