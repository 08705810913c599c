// Package internal holds the helpers every Stow controller shares, so that
// they run their workqueues, finalizers, owner checks and status writes the
// same way:
//
//   - KeyOf, KeyFromAnnotation: namespace/name keys from informer objects, including
//     cache.DeletedFinalStateUnknown tombstones; Lookup: the object of a key,
//     or nothing to do.
//   - NewQueue, WatchSessions, WatchOwnedJobs, WatchSessionResults: a
//     controller's queue and the event handlers that fill it (the last for
//     the configuration and Repository controllers, whose status follows
//     from the sessions' results).
//   - Run / RunWorkers: the sample-controller worker loop over a typed
//     rate-limited queue, calling an idempotent SyncFunc that returns when
//     to look again (the loop calls AddAfter; Sooner picks the earlier of
//     two delays) or an error (rate-limited retry).
//   - HasFinalizer / AddFinalizer / RemoveFinalizer: finalizer slices.
//   - IsControlledBy: whether an object's controller reference is a given owner.
//   - UpdateStatus: read-modify-write of a status subresource with
//     retry.RetryOnConflict, writing only when the mutation changed something;
//     UpdateSessionStatus adds the sessions' rule that a final status stands.
//   - OwnWrites: the resourceVersions a controller's own writes replaced, so
//     a sync on a cache that has not seen its last write is put off instead
//     of acting (Events, metrics, Jobs) a second time.
//   - SortReferences: the order of Repository.status.references.
//   - Event reasons shared by the controllers.
package internal
