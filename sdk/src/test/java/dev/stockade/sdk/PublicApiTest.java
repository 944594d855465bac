package dev.stockade.sdk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.reflect.Constructor;
import java.lang.reflect.Executable;
import java.lang.reflect.Field;
import java.lang.reflect.Member;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.Type;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * Pins the SDK's public API (after OkHttp's {@code okhttp.api} and Javalin's TestPublicApi): every
 * public type of {@code dev.stockade.sdk} and its public or protected members, written as
 * reflection prints them, must equal {@code sdk/api/stockade-sdk.api}. A change to the API is
 * then a visible change to that file in review.
 *
 * <p>To accept a deliberate change: {@code mvn -pl sdk test -Dtest=PublicApiTest -Dstockade.api.update=true}
 * and commit the rewritten file.
 */
class PublicApiTest {
    private static final Path API_FILE = Path.of("api", "stockade-sdk.api");
    private static final String PACKAGE = "dev.stockade.sdk";

    @Test
    void publicApiMatchesTheCheckedInFile() throws IOException, URISyntaxException, ClassNotFoundException {
        String actual = dump();
        if (Boolean.getBoolean("stockade.api.update")) {
            Files.writeString(API_FILE, actual, StandardCharsets.UTF_8);
        }
        String expected = Files.exists(API_FILE) ? Files.readString(API_FILE, StandardCharsets.UTF_8) : "";
        assertEquals(expected, actual, "The public API of the SDK changed. If that is intended, run"
                + " `mvn -pl sdk test -Dtest=PublicApiTest -Dstockade.api.update=true` and commit sdk/api/stockade-sdk.api.");
    }

    @Test
    void noPublicSignatureExposesTheInternalPackage() throws IOException, URISyntaxException, ClassNotFoundException {
        List<String> leaks = dump().lines().filter(l -> l.contains(PACKAGE + ".internal")).toList();
        assertTrue(leaks.isEmpty(), "public signatures mention internal types: " + leaks);
    }

    static String dump() throws IOException, URISyntaxException, ClassNotFoundException {
        Path dir = Path.of(StockadeClient.class.getProtectionDomain().getCodeSource().getLocation().toURI())
                .resolve(PACKAGE.replace('.', '/'));
        List<Class<?>> types = new ArrayList<>();
        try (Stream<Path> files = Files.list(dir)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".class")).sorted().toList()) {
                String simple = f.getFileName().toString().replace(".class", "");
                if (simple.equals("package-info")) continue;
                Class<?> c = Class.forName(PACKAGE + "." + simple, false, PublicApiTest.class.getClassLoader());
                if (isVisible(c)) types.add(c);
            }
        }
        StringBuilder out = new StringBuilder();
        for (Class<?> c : types) {
            out.append(header(c)).append(" {\n");
            List<String> members = new ArrayList<>();
            for (Field f : c.getDeclaredFields()) if (visible(f)) members.add(f.toGenericString());
            for (Constructor<?> k : c.getDeclaredConstructors()) if (visible(k)) members.add(k.toGenericString());
            for (Method m : c.getDeclaredMethods()) {
                if (visible(m) && !m.isSynthetic() && !m.isBridge()) members.add(m.toGenericString());
            }
            members.stream().sorted().forEach(m -> out.append("  ").append(m).append('\n'));
            out.append("}\n\n");
        }
        return out.toString();
    }

    private static boolean isVisible(Class<?> c) {
        if (c.isAnonymousClass() || c.isSynthetic() || !Modifier.isPublic(c.getModifiers())) return false;
        return c.getEnclosingClass() == null || isVisible(c.getEnclosingClass());
    }

    private static boolean visible(Member m) {
        if (m instanceof Executable e && e.isSynthetic()) return false;
        int mod = m.getModifiers();
        boolean inheritable = !Modifier.isFinal(m.getDeclaringClass().getModifiers());
        return Modifier.isPublic(mod) || (Modifier.isProtected(mod) && inheritable);
    }

    private static String header(Class<?> c) {
        StringBuilder h = new StringBuilder(c.toGenericString());
        Type sup = c.getGenericSuperclass();
        if (sup != null && !c.isEnum() && !c.isRecord() && sup != Object.class) h.append(" extends ").append(sup.getTypeName());
        Type[] ifaces = c.getGenericInterfaces();
        if (ifaces.length > 0) {
            h.append(c.isInterface() ? " extends " : " implements ")
                    .append(Arrays.stream(ifaces).map(Type::getTypeName).collect(Collectors.joining(", ")));
        }
        if (c.isSealed()) {
            h.append(" permits ").append(Arrays.stream(c.getPermittedSubclasses()).map(Class::getName).sorted()
                    .collect(Collectors.joining(", ")));
        }
        return h.toString();
    }
}
