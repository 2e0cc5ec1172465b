package io.choir.ycsb;

import java.util.List;
import java.util.Properties;
import redis.clients.jedis.Jedis;
import redis.clients.jedis.exceptions.JedisConnectionException;
import site.ycsb.DBException;
import site.ycsb.Status;

/**
 * RedisWaitYcsbClient is the same binding for Redis with WAIT ({@code -db
 * io.choir.ycsb.RedisWaitYcsbClient}): every write is followed by {@code WAIT redis.replicas timeout},
 * and counts as done only when that many replicas acknowledged it (from their memory: Redis replicas do
 * not fsync before they acknowledge). Reads go to the primary. Jedis is a blocking client, one
 * connection per YCSB thread, which is how Redis is driven; a partial update's conditional write is a
 * Lua script that compares the whole record read. A scan is not implemented (the workloads here have
 * none; a Redis range needs a separate index).
 *
 * <p>Properties: {@code redis.host} (default 127.0.0.1), {@code redis.port} (default 6379), {@code
 * redis.replicas} (default 2: a majority of three with the primary), {@code redis.timeout_ms} (default
 * 10,000).
 */
public final class RedisWaitYcsbClient extends RecordDb {
  private static final String REPLACE = "if redis.call('GET', KEYS[1]) == ARGV[1] then "
      + "redis.call('SET', KEYS[1], ARGV[2]) return 1 else return 0 end";

  @Override
  protected Store open(Properties p) throws DBException {
    String host = p.getProperty("redis.host", "127.0.0.1");
    int port = Integer.parseInt(p.getProperty("redis.port", "6379"));
    int replicas = Integer.parseInt(p.getProperty("redis.replicas", "2"));
    int timeoutMs = Integer.parseInt(p.getProperty("redis.timeout_ms", "10000"));
    try {
      return new RedisStore(new Jedis(host, port, timeoutMs), replicas, timeoutMs);
    } catch (RuntimeException e) {
      throw new DBException("cannot connect to Redis at " + host + ":" + port + ": " + e.getMessage(), e);
    }
  }

  private record RedisStore(Jedis jedis, int replicas, int timeoutMs) implements Store {
    private void waitForReplicas() {
      long acked = jedis.waitReplicas(replicas, timeoutMs);
      if (acked < replicas) {
        throw new IllegalStateException("timeout: WAIT " + replicas + " saw " + acked + " replicas (outcome unknown)");
      }
    }

    @Override
    public Stored get(byte[] key) {
      byte[] v = jedis.get(key);
      return v == null ? null : new Stored(v, 0);
    }

    @Override
    public void put(byte[] key, byte[] value) {
      jedis.set(key, value);
      waitForReplicas();
    }

    @Override
    public boolean replace(byte[] key, Stored read, byte[] value) {
      Object r = jedis.eval(REPLACE.getBytes(java.nio.charset.StandardCharsets.UTF_8), List.of(key),
          List.of(read.value(), value));
      if (!Long.valueOf(1).equals(r)) {
        return false;
      }
      waitForReplicas();
      return true;
    }

    @Override
    public boolean delete(byte[] key) {
      boolean deleted = jedis.del(key) > 0;
      waitForReplicas();
      return deleted;
    }

    @Override
    public List<byte[]> scan(byte[] start, byte[] end, int limit) {
      throw new UnsupportedOperationException("scan");
    }

    @Override
    public Status statusOf(RuntimeException e) {
      if (e instanceof UnsupportedOperationException) {
        return Status.NOT_IMPLEMENTED;
      }
      if (e instanceof JedisConnectionException) {
        return Status.SERVICE_UNAVAILABLE;
      }
      if (String.valueOf(e.getMessage()).startsWith("timeout")) {
        return new Status("TIMEOUT", e.getMessage());
      }
      return new Status("ERROR", e.getClass().getSimpleName() + ": " + e.getMessage());
    }

    @Override
    public void close() {
      jedis.close();
    }
  }

}
