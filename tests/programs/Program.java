// SPDX-License-Identifier: LGPL-2.1-or-later
//
// A Java program for run-programs.sh, run from source (java Program.java): a
// large HashMap and a large long[] on the heap, threads that keep checking
// random entries and allocate garbage, with the JVM's own threads (collector,
// JIT compilers) around them. Requests on standard input, one answer line
// each on standard output:
//   (at start)  READY <digest>
//   verify      OK <digest> ticks=<n> threads=<n>   (every thread ran since)
//            or FAIL <reason>
//   quit        BYE
//
// usage: java Program.java ENTRIES THREADS

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Random;
import java.util.concurrent.atomic.AtomicLongArray;

public class Program {
    static int entries;
    static HashMap<String, Long> table;
    static long[] longs;
    static AtomicLongArray ticks;
    static final List<String> errors = new ArrayList<>();

    static long value(long i) { return (i * 2654435761L) & 0xffffffffL; }

    static long slot(long i) { return i * 0x9e3779b97f4a7c15L ^ 0x5555L; }

    static void report(String s) {
        synchronized (errors) {
            errors.add(s);
        }
    }

    static String digest() throws Exception {
        MessageDigest md = MessageDigest.getInstance("SHA-256");
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < entries; i++) {
            String k = "key-" + i;
            sb.append(k).append('=').append(table.get(k)).append('\n');
            if (sb.length() > 1 << 20) {
                md.update(sb.toString().getBytes(StandardCharsets.UTF_8));
                sb.setLength(0);
            }
        }
        md.update(sb.toString().getBytes(StandardCharsets.UTF_8));
        byte[] b = new byte[8];
        for (long v : longs) {
            for (int j = 0; j < 8; j++)
                b[j] = (byte) (v >>> (8 * j));
            md.update(b);
        }
        StringBuilder hex = new StringBuilder();
        for (byte x : md.digest())
            hex.append(String.format("%02x", x));
        return hex.toString();
    }

    static void worker(int idx) {
        Random rnd = new Random(idx);
        List<byte[]> garbage = new ArrayList<>();
        while (true) {
            for (int n = 0; n < 100; n++) {
                int i = rnd.nextInt(entries);
                Long v = table.get("key-" + i);
                if (v == null || v != value(i))
                    report("thread " + idx + ": key-" + i + " is " + v);
                int j = rnd.nextInt(longs.length);
                if (longs[j] != slot(j))
                    report("thread " + idx + ": longs[" + j + "] is " + longs[j]);
            }
            garbage.add(new byte[16384]);
            if (garbage.size() > 64)
                garbage.clear();
            ticks.incrementAndGet(idx);
            try {
                Thread.sleep(10);
            } catch (InterruptedException e) {
                return;
            }
        }
    }

    static String verify(String reference, Thread[] threads) throws Exception {
        long[] before = new long[threads.length];
        for (int i = 0; i < threads.length; i++)
            before[i] = ticks.get(i);
        String d = digest();
        if (!d.equals(reference))
            return "FAIL digest " + d + ", expected " + reference;
        long deadline = System.nanoTime() + 60_000_000_000L;
        for (int i = 0; i < threads.length; i++) {
            if (!threads[i].isAlive())
                return "FAIL thread " + i + " is gone";
            while (ticks.get(i) <= before[i]) {
                if (System.nanoTime() > deadline)
                    return "FAIL thread " + i + " made no progress in 60 s";
                Thread.sleep(10);
            }
        }
        synchronized (errors) {
            if (!errors.isEmpty())
                return "FAIL " + errors.size() + " errors; first: " + errors.get(0);
        }
        long sum = 0;
        for (int i = 0; i < threads.length; i++)
            sum += ticks.get(i);
        return "OK " + d + " ticks=" + sum + " threads=" + Thread.activeCount();
    }

    public static void main(String[] args) throws Exception {
        entries = Integer.parseInt(args[0]);
        int n = Integer.parseInt(args[1]);
        table = new HashMap<>();
        for (int i = 0; i < entries; i++)
            table.put("key-" + i, value(i));
        longs = new long[4 << 20];
        for (int i = 0; i < longs.length; i++)
            longs[i] = slot(i);
        String reference = digest();
        ticks = new AtomicLongArray(n);
        Thread[] threads = new Thread[n];
        for (int i = 0; i < n; i++) {
            final int idx = i;
            threads[i] = new Thread(() -> worker(idx));
            threads[i].setDaemon(true);
            threads[i].start();
        }
        System.out.println("READY " + reference);
        System.out.flush();

        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            line = line.trim();
            if (line.equals("verify")) {
                System.out.println(verify(reference, threads));
            } else if (line.equals("quit")) {
                System.out.println("BYE");
                System.out.flush();
                System.exit(0);
            } else {
                System.out.println("FAIL unknown request '" + line + "'");
            }
            System.out.flush();
        }
    }
}
