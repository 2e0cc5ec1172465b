package io.choir.server.config;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * ConfigFile reads one YAML file of settings into raw key-value pairs (the values still unparsed), so
 * that the file and the flags reach {@link ServerConfig#build} in one shape; an unreadable file or one
 * that is not a mapping is refused with a {@link ConfigException} naming the file.
 */
final class ConfigFile {
  private ConfigFile() {
  }

  static Map<String, Object> read(Path file) {
    if (!Files.isReadable(file)) {
      throw new ConfigException(null, "config file " + file + " does not exist or is not readable");
    }
    try {
      ObjectMapper yaml = new ObjectMapper(new YAMLFactory());
      Object tree = yaml.readValue(file.toFile(), Object.class);
      if (tree == null) {
        return Map.of();
      }
      if (!(tree instanceof Map<?, ?> map)) {
        throw new ConfigException(null, "config file " + file + " must be a YAML mapping of settings");
      }
      Map<String, Object> out = new LinkedHashMap<>();
      map.forEach((k, v) -> out.put(String.valueOf(k), v));
      return out;
    } catch (IOException e) {
      throw new ConfigException(null, "config file " + file + " is not valid YAML: " + e.getMessage());
    }
  }
}
