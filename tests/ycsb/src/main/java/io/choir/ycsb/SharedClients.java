package io.choir.ycsb;

import java.util.HashMap;
import java.util.Map;
import java.util.function.Supplier;

/**
 * SharedClients hands YCSB's client threads a few shared clients of a store: for each distinct setting,
 * the given number of clients, made by the first thread that asks and closed when the last releases
 * them; each acquire takes the next in turn.
 */
final class SharedClients {
  /** One thread's use of one of the shared clients. */
  static final class Lease<T extends AutoCloseable> {
    private final Object settings;
    private final T client;
    private boolean released;

    private Lease(Object settings, T client) {
      this.settings = settings;
      this.client = client;
    }

    T client() {
      return client;
    }

    void release() {
      synchronized (SHARED) {
        if (released) {
          return;
        }
        released = true;
        Shared s = SHARED.get(settings);
        if (--s.users == 0) {
          SHARED.remove(settings);
          for (AutoCloseable c : s.clients) {
            try {
              c.close();
            } catch (Exception e) {
              System.err.println("closing a client: " + e);
            }
          }
        }
      }
    }
  }

  private static final class Shared {
    final AutoCloseable[] clients;
    int users;
    long next;

    Shared(AutoCloseable[] clients) {
      this.clients = clients;
    }
  }

  private static final Map<Object, Shared> SHARED = new HashMap<>();

  private SharedClients() {}

  /**
   * One of count clients shared by every caller with equal settings (a value with equals, e.g. a
   * record), made with make when none are open.
   */
  @SuppressWarnings("unchecked")
  static <T extends AutoCloseable> Lease<T> acquire(Object settings, int count, Supplier<T> make) {
    synchronized (SHARED) {
      Shared s = SHARED.get(settings);
      if (s == null) {
        AutoCloseable[] clients = new AutoCloseable[count];
        for (int i = 0; i < count; i++) {
          clients[i] = make.get();
        }
        s = new Shared(clients);
        SHARED.put(settings, s);
      }
      s.users++;
      return new Lease<>(settings, (T) s.clients[(int) (s.next++ % s.clients.length)]);
    }
  }
}
