package io.choir.client;

import io.choir.proto.BatchOp;
import io.choir.proto.CompareAndSet;
import io.choir.proto.Delete;
import io.choir.proto.Put;
import java.util.ArrayList;
import java.util.List;

/**
 * Batch is several writes applied as one log entry, all or nothing: when any compare-and-set in it
 * fails, nothing is written and {@link CasFailedException#failedIndex()} says which one. Use it for
 * small transactions (move a value between keys, update an index with its record). Build one with
 * {@link #builder()}; a Batch is immutable and can be sent more than once.
 */
public final class Batch {
  private final List<BatchOp> ops;

  private Batch(List<BatchOp> ops) {
    this.ops = List.copyOf(ops);
  }

  /**
   * A new builder for a batch.
   *
   * @return an empty builder
   */
  public static Builder builder() {
    return new Builder();
  }

  /**
   * The number of operations in the batch.
   *
   * @return the operation count, at least 1
   */
  public int size() {
    return ops.size();
  }

  List<BatchOp> ops() {
    return ops;
  }

  /**
   * Builder collects the operations of a {@link Batch} in order; the index of each operation (from 0)
   * is what {@link CasFailedException#failedIndex()} reports. Keys and values are copied when added,
   * so the caller may reuse its arrays.
   */
  public static final class Builder {
    private final List<BatchOp> ops = new ArrayList<>();

    private Builder() {}

    /**
     * Adds a write of value to key.
     *
     * @param key the key, not empty
     * @param value the value, not null (may be empty)
     * @return this builder
     */
    public Builder put(byte[] key, byte[] value) {
      ops.add(BatchOp.newBuilder()
          .setPut(Put.newBuilder().setKey(Requests.key(key)).setValue(Requests.value(value, "value")))
          .build());
      return this;
    }

    /**
     * Adds a write of value to key, both encoded as UTF-8.
     *
     * @param key the key, not empty
     * @param value the value, not null (may be empty)
     * @return this builder
     */
    public Builder put(String key, String value) {
      return put(Requests.utf8(key, "key"), Requests.utf8(value, "value"));
    }

    /**
     * Adds a delete of key (a no-op when the key is absent).
     *
     * @param key the key, not empty
     * @return this builder
     */
    public Builder delete(byte[] key) {
      ops.add(BatchOp.newBuilder().setDelete(Delete.newBuilder().setKey(Requests.key(key))).build());
      return this;
    }

    /**
     * Adds a delete of key, encoded as UTF-8.
     *
     * @param key the key, not empty
     * @return this builder
     */
    public Builder delete(String key) {
      return delete(Requests.utf8(key, "key"));
    }

    /**
     * Adds a write of newValue to key that only happens when the key's current value equals
     * expectedValue; otherwise the whole batch fails.
     *
     * @param key the key, not empty
     * @param expectedValue the value the key must hold, not null
     * @param newValue the value to write, not null
     * @return this builder
     */
    public Builder compareAndSet(byte[] key, byte[] expectedValue, byte[] newValue) {
      return cas(Requests.casOnValue(key, expectedValue, newValue));
    }

    /**
     * UTF-8 form of {@link #compareAndSet(byte[], byte[], byte[])}.
     *
     * @param key the key, not empty
     * @param expectedValue the value the key must hold, not null
     * @param newValue the value to write, not null
     * @return this builder
     */
    public Builder compareAndSet(String key, String expectedValue, String newValue) {
      return compareAndSet(Requests.utf8(key, "key"), Requests.utf8(expectedValue, "expectedValue"),
          Requests.utf8(newValue, "newValue"));
    }

    /**
     * Adds a write of newValue to key that only happens when the key's current version equals
     * expectedVersion; otherwise the whole batch fails.
     *
     * @param key the key, not empty
     * @param expectedVersion the version the key must have, positive
     * @param newValue the value to write, not null
     * @return this builder
     */
    public Builder compareAndSetVersion(byte[] key, long expectedVersion, byte[] newValue) {
      return cas(Requests.casOnVersion(key, expectedVersion, newValue));
    }

    /**
     * UTF-8 form of {@link #compareAndSetVersion(byte[], long, byte[])}.
     *
     * @param key the key, not empty
     * @param expectedVersion the version the key must have, positive
     * @param newValue the value to write, not null
     * @return this builder
     */
    public Builder compareAndSetVersion(String key, long expectedVersion, String newValue) {
      return compareAndSetVersion(Requests.utf8(key, "key"), expectedVersion, Requests.utf8(newValue, "newValue"));
    }

    /**
     * Adds a write of value to key that only happens when the key is absent; otherwise the whole
     * batch fails.
     *
     * @param key the key, not empty
     * @param value the value to write, not null
     * @return this builder
     */
    public Builder putIfAbsent(byte[] key, byte[] value) {
      return cas(Requests.casAbsent(key, value));
    }

    /**
     * UTF-8 form of {@link #putIfAbsent(byte[], byte[])}.
     *
     * @param key the key, not empty
     * @param value the value to write, not null
     * @return this builder
     */
    public Builder putIfAbsent(String key, String value) {
      return putIfAbsent(Requests.utf8(key, "key"), Requests.utf8(value, "value"));
    }

    private Builder cas(CompareAndSet cas) {
      ops.add(BatchOp.newBuilder().setCompareAndSet(cas).build());
      return this;
    }

    /**
     * The batch with the operations added so far.
     *
     * @return an immutable batch
     * @throws IllegalArgumentException when no operation was added
     */
    public Batch build() {
      if (ops.isEmpty()) {
        throw new IllegalArgumentException("a batch needs at least one operation");
      }
      return new Batch(ops);
    }
  }

  /** Shows the number of operations. */
  @Override
  public String toString() {
    return "Batch[" + ops.size() + " ops]";
  }
}
