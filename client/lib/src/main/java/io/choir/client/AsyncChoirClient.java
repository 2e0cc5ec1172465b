package io.choir.client;

import io.choir.proto.CompareAndSet;
import io.choir.proto.Response;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.function.Function;

/**
 * AsyncChoirClient is the non-blocking face of a {@link ChoirClient}, obtained with
 * {@link ChoirClient#async()}: every operation returns a CompletableFuture at once, and many calls can
 * be in flight on one connection. It shares the connections, ids and limits of its ChoirClient and is
 * closed with it.
 *
 * <p>Failures complete the future exceptionally with the {@link ChoirException} subclass itself (not
 * wrapped), so {@code future.exceptionally(e -> ...)} sees e.g. a {@link CasFailedException} directly.
 * {@link ChoirTimeoutException} (and its subclass {@link SessionExpiredException}) means the outcome is
 * unknown; {@link UnavailableException} and {@link BusyException} mean the request was not executed.
 * Argument errors (null or empty keys) throw IllegalArgumentException at the call instead, since they
 * are programming errors, not outcomes.
 *
 * <p>Completion runs on the client's event-loop threads: keep callbacks short and never block in them
 * (use the {@code ...Async} variants of CompletableFuture with your own executor for heavy work), or the
 * client's I/O stalls. When {@code maxInFlight} calls are outstanding, a new call waits for a slot
 * without blocking the caller; if none frees while at least a tenth of the request timeout remains, it
 * completes with {@link BusyException} and is not sent. Cancelling a returned future does not withdraw the request.
 */
public final class AsyncChoirClient {
  private final Dispatcher dispatcher;
  private final ReadConsistency defaultConsistency;
  private final AsyncMembershipClient membership;
  private final AsyncLeaseClient leases;

  AsyncChoirClient(Dispatcher dispatcher, ReadConsistency defaultConsistency) {
    this.dispatcher = dispatcher;
    this.defaultConsistency = defaultConsistency;
    this.membership = new AsyncMembershipClient(dispatcher);
    this.leases = new AsyncLeaseClient(dispatcher);
  }

  /**
   * Reads key with the client's default read consistency.
   *
   * @param key the key, not empty
   * @return the value and its version, or an empty Optional when the key is absent
   */
  public CompletableFuture<Optional<VersionedValue>> get(byte[] key) {
    return get(key, defaultConsistency);
  }

  /**
   * Reads key (UTF-8) with the client's default read consistency.
   *
   * @param key the key, not empty
   * @return the value and its version, or an empty Optional when the key is absent
   */
  public CompletableFuture<Optional<VersionedValue>> get(String key) {
    return get(Requests.utf8(key, "key"), defaultConsistency);
  }

  /**
   * Reads key with the given consistency; SEQUENTIAL may be answered by any replica, never older than
   * what this client has already seen.
   *
   * @param key the key, not empty
   * @param consistency how the read is served
   * @return the value and its version, or an empty Optional when the key is absent
   */
  public CompletableFuture<Optional<VersionedValue>> get(byte[] key, ReadConsistency consistency) {
    return map(dispatcher.submit(Requests.get(key, consistency), consistency == ReadConsistency.SEQUENTIAL, null),
        Responses::get);
  }

  /**
   * Reads key (UTF-8) with the given consistency.
   *
   * @param key the key, not empty
   * @param consistency how the read is served
   * @return the value and its version, or an empty Optional when the key is absent
   */
  public CompletableFuture<Optional<VersionedValue>> get(String key, ReadConsistency consistency) {
    return get(Requests.utf8(key, "key"), consistency);
  }

  /**
   * Writes value to key.
   *
   * @param key the key, not empty
   * @param value the value, not null (may be empty)
   * @return the op number of the write, which is the key's new version
   */
  public CompletableFuture<Long> put(byte[] key, byte[] value) {
    return map(dispatcher.submit(Requests.put(key, value), false, null), Responses::put);
  }

  /**
   * Writes value to key, both encoded as UTF-8.
   *
   * @param key the key, not empty
   * @param value the value, not null (may be empty)
   * @return the op number of the write, which is the key's new version
   */
  public CompletableFuture<Long> put(String key, String value) {
    return put(Requests.utf8(key, "key"), Requests.utf8(value, "value"));
  }

  /**
   * Deletes key.
   *
   * @param key the key, not empty
   * @return whether the key existed
   */
  public CompletableFuture<Boolean> delete(byte[] key) {
    return map(dispatcher.submit(Requests.delete(key), false, null), Responses::delete);
  }

  /**
   * Deletes key (UTF-8).
   *
   * @param key the key, not empty
   * @return whether the key existed
   */
  public CompletableFuture<Boolean> delete(String key) {
    return delete(Requests.utf8(key, "key"));
  }

  /**
   * Writes newValue to key only when the key's current value equals expectedValue; otherwise completes
   * with {@link CasFailedException} carrying the current value and version.
   *
   * @param key the key, not empty
   * @param expectedValue the value the key must hold, not null (use putIfAbsent to expect absence)
   * @param newValue the value to write, not null
   * @return the op number of the write
   */
  public CompletableFuture<Long> compareAndSet(byte[] key, byte[] expectedValue, byte[] newValue) {
    return cas(Requests.casOnValue(key, expectedValue, newValue));
  }

  /**
   * UTF-8 form of {@link #compareAndSet(byte[], byte[], byte[])}.
   *
   * @param key the key, not empty
   * @param expectedValue the value the key must hold, not null
   * @param newValue the value to write, not null
   * @return the op number of the write
   */
  public CompletableFuture<Long> compareAndSet(String key, String expectedValue, String newValue) {
    return compareAndSet(Requests.utf8(key, "key"), Requests.utf8(expectedValue, "expectedValue"),
        Requests.utf8(newValue, "newValue"));
  }

  /**
   * Writes newValue to key only when the key's current version equals expectedVersion (optimistic
   * concurrency after a get); otherwise completes with {@link CasFailedException}.
   *
   * @param key the key, not empty
   * @param expectedVersion the version the key must have, positive
   * @param newValue the value to write, not null
   * @return the op number of the write
   */
  public CompletableFuture<Long> compareAndSetVersion(byte[] key, long expectedVersion, byte[] newValue) {
    return cas(Requests.casOnVersion(key, expectedVersion, newValue));
  }

  /**
   * UTF-8 form of {@link #compareAndSetVersion(byte[], long, byte[])}.
   *
   * @param key the key, not empty
   * @param expectedVersion the version the key must have, positive
   * @param newValue the value to write, not null
   * @return the op number of the write
   */
  public CompletableFuture<Long> compareAndSetVersion(String key, long expectedVersion, String newValue) {
    return compareAndSetVersion(Requests.utf8(key, "key"), expectedVersion, Requests.utf8(newValue, "newValue"));
  }

  /**
   * Writes value to key only when the key is absent; otherwise completes with
   * {@link CasFailedException} carrying the current value and version.
   *
   * @param key the key, not empty
   * @param value the value to write, not null
   * @return the op number of the write
   */
  public CompletableFuture<Long> putIfAbsent(byte[] key, byte[] value) {
    return cas(Requests.casAbsent(key, value));
  }

  /**
   * UTF-8 form of {@link #putIfAbsent(byte[], byte[])}.
   *
   * @param key the key, not empty
   * @param value the value to write, not null
   * @return the op number of the write
   */
  public CompletableFuture<Long> putIfAbsent(String key, String value) {
    return putIfAbsent(Requests.utf8(key, "key"), Requests.utf8(value, "value"));
  }

  private CompletableFuture<Long> cas(CompareAndSet cas) {
    return map(dispatcher.submit(Requests.cas(cas), false, null), r -> Responses.write(r, false));
  }

  /**
   * Reads the pairs with keys in [startKey, endKey) in byte order, with the client's default read
   * consistency.
   *
   * @param startKey the first key (inclusive); empty for the beginning
   * @param endKey the end key (exclusive); empty or null for the end of the key space
   * @param limit the most pairs to return; 0 for the server's default
   * @return the pairs and whether more remain
   */
  public CompletableFuture<ScanResult> scan(byte[] startKey, byte[] endKey, int limit) {
    return scan(startKey, endKey, limit, defaultConsistency);
  }

  /**
   * Reads the pairs with keys in [startKey, endKey) with the given consistency.
   *
   * @param startKey the first key (inclusive); empty for the beginning
   * @param endKey the end key (exclusive); empty or null for the end of the key space
   * @param limit the most pairs to return; 0 for the server's default
   * @param consistency how the read is served
   * @return the pairs and whether more remain
   */
  public CompletableFuture<ScanResult> scan(byte[] startKey, byte[] endKey, int limit, ReadConsistency consistency) {
    return map(dispatcher.submit(Requests.scan(startKey, endKey, limit, consistency),
        consistency == ReadConsistency.SEQUENTIAL, null), Responses::scan);
  }

  /**
   * UTF-8 form of {@link #scan(byte[], byte[], int)}.
   *
   * @param startKey the first key (inclusive); empty for the beginning
   * @param endKey the end key (exclusive); empty or null for the end of the key space
   * @param limit the most pairs to return; 0 for the server's default
   * @return the pairs and whether more remain
   */
  public CompletableFuture<ScanResult> scan(String startKey, String endKey, int limit) {
    return scan(startKey, endKey, limit, defaultConsistency);
  }

  /**
   * UTF-8 form of {@link #scan(byte[], byte[], int, ReadConsistency)}.
   *
   * @param startKey the first key (inclusive); empty for the beginning
   * @param endKey the end key (exclusive); empty or null for the end of the key space
   * @param limit the most pairs to return; 0 for the server's default
   * @param consistency how the read is served
   * @return the pairs and whether more remain
   */
  public CompletableFuture<ScanResult> scan(String startKey, String endKey, int limit, ReadConsistency consistency) {
    return scan(Requests.utf8(startKey, "startKey"), endKey == null ? null : Requests.utf8(endKey, "endKey"),
        limit, consistency);
  }

  /**
   * Applies the batch's writes as one log entry, all or nothing. When a compare-and-set in it fails,
   * nothing is written and the future completes with {@link CasFailedException} whose
   * {@link CasFailedException#failedIndex()} says which operation failed.
   *
   * @param batch the writes
   * @return the op number of the batch, which is the new version of every key it wrote
   */
  public CompletableFuture<Long> batch(Batch batch) {
    return map(dispatcher.submit(Requests.batch(batch), false, null), r -> Responses.write(r, true));
  }

  /**
   * Lists and changes the members of the cluster (DESIGN.md "Membership").
   *
   * @return the membership calls, on this client's connections
   */
  public AsyncMembershipClient membership() {
    return membership;
  }

  /**
   * Grants, keeps alive, revokes and lists leases, and writes keys attached to them (docs/lease.md).
   *
   * @return the lease calls, on this client's connections
   */
  public AsyncLeaseClient leases() {
    return leases;
  }

  /**
   * Asks every configured endpoint for its status, each directly and in parallel. Never completes
   * exceptionally: an endpoint that does not answer yields an entry with its error.
   *
   * @return one entry per configured endpoint, in configuration order
   */
  public CompletableFuture<List<ReplicaStatusResult>> status() {
    List<CompletableFuture<ReplicaStatusResult>> each = new ArrayList<>();
    for (Endpoint endpoint : dispatcher.endpoints()) {
      each.add(status(endpoint));
    }
    return CompletableFuture.allOf(each.toArray(CompletableFuture[]::new)).thenApply(v -> {
      List<ReplicaStatusResult> all = new ArrayList<>(each.size());
      for (CompletableFuture<ReplicaStatusResult> f : each) {
        all.add(f.join());
      }
      return List.copyOf(all);
    });
  }

  /**
   * Asks one endpoint (configured or not) for its status. Never completes exceptionally: when the
   * endpoint does not answer, the entry carries the error.
   *
   * @param endpoint host:port of the replica
   * @return the replica's status or the error
   * @throws IllegalArgumentException when endpoint is not host:port
   */
  public CompletableFuture<ReplicaStatusResult> status(String endpoint) {
    return status(Endpoint.parse(endpoint));
  }

  private CompletableFuture<ReplicaStatusResult> status(Endpoint endpoint) {
    return map(dispatcher.submit(Requests.status(), false, endpoint), Responses::status)
        .handle((info, error) -> error == null
            ? new ReplicaStatusResult(endpoint.toString(), info, null)
            : new ReplicaStatusResult(endpoint.toString(), null, Futures.toChoirException(error)));
  }

  /**
   * Maps a response future to a result future whose failures are the typed exceptions themselves,
   * not CompletionException wrappers.
   */
  static <T> CompletableFuture<T> map(CompletableFuture<Response> response, Function<Response, T> fn) {
    CompletableFuture<T> out = new CompletableFuture<>();
    response.whenComplete((r, error) -> {
      if (error != null) {
        out.completeExceptionally(Futures.unwrap(error));
        return;
      }
      try {
        out.complete(fn.apply(r));
      } catch (RuntimeException e) {
        out.completeExceptionally(e);
      }
    });
    return out;
  }
}
