package io.choir.examples;

import java.util.Arrays;
import java.util.List;

/**
 * Endpoints is where the examples find the cluster: the first program argument, else
 * {@code $CHOIR_ENDPOINTS}, else a local replica (what `choir cluster up` starts), as host:port,...
 */
final class Endpoints {
  private Endpoints() {}

  static List<String> of(String[] args) {
    String e = args.length > 0 ? args[0] : System.getenv().getOrDefault("CHOIR_ENDPOINTS", "127.0.0.1:7301");
    return Arrays.stream(e.split(",")).map(String::trim).filter(s -> !s.isEmpty()).toList();
  }
}
