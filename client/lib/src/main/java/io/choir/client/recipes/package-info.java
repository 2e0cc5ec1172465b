/**
 * Coordination recipes on top of the client's leases and compare-and-set (docs/lease.md "Recipes"):
 * {@link io.choir.client.recipes.Lock}, a lock on one key whose holder's key lives as long as its
 * lease, and {@link io.choir.client.recipes.LeaderElection}; both hand out fencing tokens (the version
 * of the holder's key) so that a paused former holder cannot corrupt what they guard. A waiter is woken by
 * a watch on the key (its release or expiry), with a poll as a fallback.
 */
package io.choir.client.recipes;
