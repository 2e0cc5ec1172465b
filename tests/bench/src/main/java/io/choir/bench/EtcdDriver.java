package io.choir.bench;

import io.choir.bench.engine.BenchDriver;
import io.etcd.jetcd.ByteSequence;
import io.etcd.jetcd.Client;
import io.etcd.jetcd.KV;
import io.etcd.jetcd.options.GetOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * EtcdDriver drives etcd's KV API through jetcd: a few {@link Client}s (one gRPC channel each), round
 * robin; puts, and gets that are linearizable unless serializable reads are asked for. Every operation
 * gets the timeout, so a hung request becomes an error instead of a stuck worker.
 */
public final class EtcdDriver implements BenchDriver {
  private final List<Client> clients = new ArrayList<>();
  private final List<KV> kvs = new ArrayList<>();
  private final AtomicInteger next = new AtomicInteger();
  private final GetOption getOption;
  private final long timeoutMs;
  private final Map<String, Object> info = new LinkedHashMap<>();

  public EtcdDriver(List<String> endpoints, int connections, Duration timeout, boolean serializable) {
    this.timeoutMs = timeout.toMillis();
    this.getOption = GetOption.builder().withSerializable(serializable).build();
    try {
      for (int i = 0; i < connections; i++) {
        Client c = Client.builder().endpoints(endpoints.toArray(String[]::new)).build();
        clients.add(c);
        kvs.add(c.getKVClient());
      }
    } catch (RuntimeException e) {
      close();
      throw e;
    }
    info.put("endpoints", String.join(",", endpoints));
    info.put("connections", connections);
    info.put("reads", serializable ? "serializable" : "linearizable");
    info.put("timeout_ms", timeoutMs);
  }

  private KV pick() {
    return kvs.get(Math.floorMod(next.getAndIncrement(), kvs.size()));
  }

  @Override
  public CompletableFuture<?> write(byte[] key, byte[] value) {
    return pick().put(ByteSequence.from(key), ByteSequence.from(value)).orTimeout(timeoutMs, TimeUnit.MILLISECONDS);
  }

  @Override
  public CompletableFuture<?> read(byte[] key) {
    return pick().get(ByteSequence.from(key), getOption).orTimeout(timeoutMs, TimeUnit.MILLISECONDS);
  }

  @Override
  public String name() {
    return "etcd";
  }

  @Override
  public Map<String, Object> describe() {
    return info;
  }

  @Override
  public void close() {
    for (Client c : clients) {
      try {
        c.close();
      } catch (RuntimeException ignored) {
        // close the others
      }
    }
  }
}
