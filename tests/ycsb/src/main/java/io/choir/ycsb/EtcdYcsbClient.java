package io.choir.ycsb;

import io.etcd.jetcd.ByteSequence;
import io.etcd.jetcd.Client;
import io.etcd.jetcd.KeyValue;
import io.etcd.jetcd.kv.GetResponse;
import io.etcd.jetcd.op.Cmp;
import io.etcd.jetcd.op.CmpTarget;
import io.etcd.jetcd.op.Op;
import io.etcd.jetcd.options.GetOption;
import io.etcd.jetcd.options.PutOption;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import site.ycsb.DBException;
import site.ycsb.Status;

/**
 * EtcdYcsbClient is the same binding for etcd through jetcd ({@code -db io.choir.ycsb.EtcdYcsbClient}),
 * so that both stores run YCSB's driver with records stored alike ({@link RecordDb}): etcd's reads are
 * linearizable (its default), a partial update's conditional write is a transaction on the mod revision
 * read. The threads share {@code etcd.connections} jetcd clients (default 1).
 *
 * <p>Properties: {@code etcd.endpoints} (http://host:port,...; default http://127.0.0.1:2379), {@code
 * etcd.connections}, {@code etcd.timeout_ms} (default 10,000).
 */
public final class EtcdYcsbClient extends RecordDb {
  record Settings(List<String> endpoints) {}

  @Override
  protected Store open(Properties p) throws DBException {
    int connections = Integer.parseInt(p.getProperty("etcd.connections", "1"));
    long timeoutMs = Long.parseLong(p.getProperty("etcd.timeout_ms", "10000"));
    Settings s = new Settings(List.of(p.getProperty("etcd.endpoints", "http://127.0.0.1:2379").split(",")));
    try {
      return new EtcdStore(SharedClients.acquire(s, connections,
          () -> Client.builder().endpoints(s.endpoints().toArray(String[]::new)).build()), timeoutMs);
    } catch (RuntimeException e) {
      throw new DBException("cannot make a jetcd client: " + e.getMessage(), e);
    }
  }

  private record EtcdStore(SharedClients.Lease<Client> lease, long timeoutMs) implements Store {
    private <T> T await(CompletableFuture<T> f) {
      try {
        return f.get(timeoutMs, TimeUnit.MILLISECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException("interrupted", e);
      } catch (ExecutionException e) {
        throw new IllegalStateException(e.getCause().toString(), e.getCause());
      } catch (TimeoutException e) {
        f.cancel(true);
        throw new IllegalStateException("timeout: outcome unknown", e);
      }
    }

    @Override
    public Stored get(byte[] key) {
      GetResponse r = await(lease.client().getKVClient().get(ByteSequence.from(key)));
      if (r.getKvs().isEmpty()) {
        return null;
      }
      KeyValue kv = r.getKvs().get(0);
      return new Stored(kv.getValue().getBytes(), kv.getModRevision());
    }

    @Override
    public void put(byte[] key, byte[] value) {
      await(lease.client().getKVClient().put(ByteSequence.from(key), ByteSequence.from(value)));
    }

    @Override
    public boolean replace(byte[] key, Stored read, byte[] value) {
      ByteSequence k = ByteSequence.from(key);
      return await(lease.client().getKVClient().txn()
          .If(new Cmp(k, Cmp.Op.EQUAL, CmpTarget.modRevision(read.version())))
          .Then(Op.put(k, ByteSequence.from(value), PutOption.DEFAULT)).commit()).isSucceeded();
    }

    @Override
    public boolean delete(byte[] key) {
      return await(lease.client().getKVClient().delete(ByteSequence.from(key))).getDeleted() > 0;
    }

    @Override
    public List<byte[]> scan(byte[] start, byte[] end, int limit) {
      GetOption range = GetOption.builder().withRange(ByteSequence.from(end)).withLimit(limit).build();
      return await(lease.client().getKVClient().get(ByteSequence.from(start), range)).getKvs().stream()
          .map(kv -> kv.getValue().getBytes()).toList();
    }

    @Override
    public Status statusOf(RuntimeException e) {
      String m = String.valueOf(e.getMessage());
      if (m.startsWith("timeout")) {
        return new Status("TIMEOUT", m);
      }
      if (m.contains("UNAVAILABLE")) {
        return Status.SERVICE_UNAVAILABLE;
      }
      return new Status("ERROR", e.getClass().getSimpleName() + ": " + m);
    }

    @Override
    public void close() {
      lease.release();
    }
  }
}
