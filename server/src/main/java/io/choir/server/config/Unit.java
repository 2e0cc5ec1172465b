package io.choir.server.config;

/**
 * Unit is what a number-valued setting counts, printed next to it in the README's settings table (the
 * key's suffix says it too: _ms, _bytes, _percent, _ppm, per_sec).
 */
public enum Unit {
  /** No unit: a name, a choice, a flag, or a count of things the key names (ops, entries, connections). */
  NONE(""),
  BYTES("bytes"),
  MILLISECONDS("ms"),
  PERCENT("%"),
  PARTS_PER_MILLION("ppm"),
  BYTES_PER_SECOND("bytes/s");

  private final String symbol;

  Unit(String symbol) {
    this.symbol = symbol;
  }

  /** The unit as the table prints it ("" for NONE). */
  public String symbol() {
    return symbol;
  }
}
