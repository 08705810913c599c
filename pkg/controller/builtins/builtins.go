// Package builtins keeps the built-in Functions and Tasks (pkg/builtin) as
// this operator ships them: Ensure writes them at start, and the Keeper puts
// one back as soon as someone edits or deletes it. Every session's Job is
// built from them: an edited built-in (Stash's documentation shows a
// Function named update-status running Stash's image) broke every backup
// until the operator's next start silently reverted it.
package builtins

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/client/clientset/versioned"
	"github.com/stowhq/stow/client/informers/externalversions"
	"github.com/stowhq/stow/pkg/builtin"
	"github.com/stowhq/stow/pkg/controller/internal"
)

// Ensure creates the built-in Functions and Tasks, or updates their
// spec when it differs (a new --image, a new operator version). restored is
// called with each existing object whose spec it put back.
func Ensure(ctx context.Context, stow versioned.Interface, image string, restored ...func(obj runtime.Object)) error {
	err := ensureSpecs(ctx, "Function", stow.StowV1beta1().Functions(), builtin.Functions(image),
		func(o *v1beta1.Function) *v1beta1.FunctionSpec { return &o.Spec }, restored...)
	if err != nil {
		return err
	}
	return ensureSpecs(ctx, "Task", stow.StowV1beta1().Tasks(), builtin.Tasks(),
		func(o *v1beta1.Task) *v1beta1.TaskSpec { return &o.Spec }, restored...)
}

// objectClient is what ensureSpecs needs of a typed cluster-scoped client.
type objectClient[T any] interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (T, error)
	Create(ctx context.Context, obj T, opts metav1.CreateOptions) (T, error)
	Update(ctx context.Context, obj T, opts metav1.UpdateOptions) (T, error)
}

// ensureSpecs creates each of wants (objects of kind) that does not exist
// and gives an existing one want's spec (spec points at an object's), with
// conflict retry.
func ensureSpecs[T interface {
	metav1.Object
	runtime.Object
}, S any](ctx context.Context, kind string, client objectClient[T], wants []T, spec func(T) *S, restored ...func(obj runtime.Object)) error {
	logger := klog.FromContext(ctx)
	for _, want := range wants {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cur, err := client.Get(ctx, want.GetName(), metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				_, err = client.Create(ctx, want, metav1.CreateOptions{})
				if err == nil {
					logger.Info("Created built-in "+kind, "name", want.GetName())
				}
				return err
			}
			if err != nil || equality.Semantic.DeepEqual(spec(cur), spec(want)) {
				return err
			}
			*spec(cur) = *spec(want)
			updated, err := client.Update(ctx, cur, metav1.UpdateOptions{})
			if err == nil {
				logger.Info("Updated built-in "+kind, "name", want.GetName())
				for _, f := range restored {
					f(updated)
				}
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("ensure %s %s: %w", kind, want.GetName(), err)
		}
	}
	return nil
}

// key is the one key of the Keeper's queue: any change to a built-in
// ensures them all (a handful of Gets).
const key = "builtins"

// EventRestored is the reason of the Warning Event on a built-in Function
// or Task whose spec the Keeper put back.
const EventRestored = "BuiltinRestored"

// Keeper puts a built-in Function or Task back as soon as it is edited or
// deleted, with a Warning Event saying so.
type Keeper struct {
	stow     versioned.Interface
	image    string
	recorder record.EventRecorder
	queue    workqueue.TypedRateLimitingInterface[string]
	synced   []cache.InformerSynced
}

// NewKeeper watches the Functions and Tasks of inf for changes to the
// built-ins of image; the caller starts inf and calls Run.
func NewKeeper(stow versioned.Interface, image string, inf externalversions.SharedInformerFactory, recorder record.EventRecorder) (*Keeper, error) {
	k := &Keeper{stow: stow, image: image, recorder: recorder, queue: internal.NewQueue("builtins")}
	names := map[string]bool{}
	for _, f := range builtin.Functions(image) {
		names["Function/"+f.Name] = true
	}
	for _, t := range builtin.Tasks() {
		names["Task/"+t.Name] = true
	}
	enqueue := func(kind string) func(obj any) {
		return func(obj any) {
			if m, ok := internal.MetaOf(obj); ok && names[kind+"/"+m.GetName()] {
				k.queue.Add(key)
			}
		}
	}
	for kind, i := range map[string]cache.SharedIndexInformer{"Function": inf.Stow().V1beta1().Functions().Informer(), "Task": inf.Stow().V1beta1().Tasks().Informer()} {
		// Additions are not watched: the start ensured them, and the
		// Keeper's own re-creation of a deleted one is one.
		if _, err := i.AddEventHandler(cache.ResourceEventHandlerFuncs{
			UpdateFunc: func(_, n any) { enqueue(kind)(n) },
			DeleteFunc: enqueue(kind),
		}); err != nil {
			return nil, err
		}
		k.synced = append(k.synced, i.HasSynced)
	}
	return k, nil
}

// Run ensures the built-ins whenever one changed, until ctx is done, with
// the work loop every controller of the operator runs (internal.Run).
func (k *Keeper) Run(ctx context.Context, _ int) error {
	return internal.Run(ctx, "builtins", k.queue, k.synced, 1, k.sync)
}

func (k *Keeper) sync(ctx context.Context, _ string) (time.Duration, error) {
	return 0, Ensure(ctx, k.stow, k.image, func(obj runtime.Object) {
		m, _ := obj.(metav1.Object)
		k.recorder.Eventf(obj, corev1.EventTypeWarning, EventRestored,
			"%s is one of Stow's built-ins, which the Jobs of every session are built from: its spec was put back. Give a Function or Task of your own another name", m.GetName())
	})
}
