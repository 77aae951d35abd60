namespace Btrfs.Tests.Infrastructure
{
    using System;
    using System.Collections.Generic;
    using System.IO;
    using System.Linq;
    using Btrfs.Kernel;

    /// <summary>Builds files with a known layout, written through ordinary I/O.</summary>
    internal static class FileBuilder
    {
        /// <summary>Highly compressible ASCII text of exactly <paramref name="count"/> bytes (numbered lines).</summary>
        internal static byte[] Text(int count)
        {
            var sb = new System.Text.StringBuilder(count + 64);
            for (int i = 0; sb.Length < count; i++)
            {
                sb.Append("line ").Append(i).Append(": the quick brown fox jumps over the lazy dog\n");
            }

            return System.Text.Encoding.ASCII.GetBytes(sb.ToString(0, count));
        }

        /// <summary>Incompressible bytes, reproducible from the seed.</summary>
        internal static byte[] RandomBytes(int count, int seed)
        {
            var data = new byte[count];
            new Random(seed).NextBytes(data);
            return data;
        }

        /// <summary>
        /// Writes <paramref name="count"/> chunks of <paramref name="chunk"/> random bytes, chunk i at
        /// i × <paramref name="stride"/>, with fsync after each when asked. With stride &gt; chunk the
        /// chunks are separated by holes, so each is its own extent on every filesystem.
        /// </summary>
        internal static void Chunks(string path, int count, int chunk, long stride, bool fsyncEach = true, int seed = 1)
        {
            using var fs = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.ReadWrite);
            byte[] data = RandomBytes(chunk, seed);
            for (int i = 0; i < count; i++)
            {
                fs.Position = i * stride;
                data[0] = (byte)i;
                fs.Write(data, 0, data.Length);
                if (fsyncEach)
                {
                    fs.Flush(flushToDisk: true);
                }
            }

            fs.Flush(flushToDisk: true);
        }

        /// <summary>Writes bytes at an offset of an existing (or new) file and fsyncs.</summary>
        internal static void WriteAt(string path, long offset, byte[] data)
        {
            using var fs = new FileStream(path, FileMode.OpenOrCreate, FileAccess.Write, FileShare.ReadWrite);
            fs.Position = offset;
            fs.Write(data, 0, data.Length);
            fs.Flush(flushToDisk: true);
        }

        /// <summary>
        /// Creates a new file with <paramref name="data"/> through a plain FileStream: no O_TRUNC and no
        /// preallocation (File.WriteAllBytes/WriteAllText fallocate first, and btrfs writes into
        /// preallocated extents in place, uncompressed).
        /// </summary>
        internal static void WriteNew(string path, byte[] data, bool fsync = true)
        {
            using var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.ReadWrite);
            fs.Write(data, 0, data.Length);
            fs.Flush(flushToDisk: fsync);
        }

        /// <summary>
        /// A file fragmented the way COW files fragment: <paramref name="size"/> bytes written in one
        /// go, then <paramref name="writes"/> random 4 KiB overwrites with an fsync every 64 (each
        /// overwrite lands in a new extent on btrfs). Returns the content as it is at the end.
        /// </summary>
        /// <summary>
        /// A file written as 4 KiB blocks in random order with an fsync every <paramref name="fsyncEvery"/>
        /// blocks: on xfs (and ext4) each fsync allocates what is dirty, so the file ends up in thousands
        /// of extents and its extent map is a btree. Returns the content.
        /// </summary>
        internal static byte[] WrittenInRandomOrder(string path, int size, int fsyncEvery = 8, int seed = 11)
        {
            byte[] content = RandomBytes(size, seed);
            int[] blocks = Enumerable.Range(0, size / 4096).ToArray();
            new Random(seed).Shuffle(blocks);
            using var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.ReadWrite);
            for (int i = 0; i < blocks.Length; i++)
            {
                fs.Position = blocks[i] * 4096L;
                fs.Write(content, blocks[i] * 4096, 4096);
                if (i % fsyncEvery == fsyncEvery - 1)
                {
                    fs.Flush(flushToDisk: true);
                }
            }

            fs.Flush(flushToDisk: true);
            return content;
        }

        /// <summary>
        /// Files a database parameter of the module (-HashFile, -StatePath) must refuse untouched, made in
        /// <paramref name="dir"/>: random bytes, another application's SQLite database (made by the sqlite3
        /// tool), and an empty file.
        /// </summary>
        internal static (string Garbage, string Foreign, string Empty) NotOurDatabases(string dir, int seed)
        {
            string garbage = Path.Combine(dir, "garbage.db"), foreign = Path.Combine(dir, "foreign.db"), empty = Path.Combine(dir, "empty.db");
            WriteNew(garbage, RandomBytes(16 << 10, seed));
            Shell.Run("sqlite3", foreign, "CREATE TABLE files (x); INSERT INTO files VALUES (1);");
            WriteNew(empty, Array.Empty<byte>());
            return (garbage, foreign, empty);
        }

        internal static byte[] Fragmented(string path, int size, int writes, int seed = 3)
        {
            byte[] content = RandomBytes(size, seed);
            var rng = new Random(seed + 1);
            using var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.ReadWrite);
            fs.Write(content);
            fs.Flush(flushToDisk: true);
            byte[] block = new byte[4096];
            for (int i = 0; i < writes; i++)
            {
                rng.NextBytes(block);
                long at = rng.Next(size / 4096) * 4096L;
                fs.Position = at;
                fs.Write(block);
                block.CopyTo(content, (int)at);
                if (i % 64 == 63)
                {
                    fs.Flush(flushToDisk: true);
                }
            }

            fs.Flush(flushToDisk: true);
            return content;
        }

        /// <summary>
        /// A file fragmented on any filesystem by fragmenting the free space first: fill the
        /// (small, test-owned) filesystem at <paramref name="mount"/> with 128 KiB files, delete every
        /// other one, then write a file of 1/<paramref name="share"/> of the free space, which has to go
        /// into the gaps. Returns the file's path.
        /// </summary>
        internal static string FragmentedByFreeSpace(string mount, int share = 2)
        {
            FillAndPunch(mount, 128 * 1024);
            string big = Path.Combine(mount, "big.img");
            WriteLarge(big, new DriveInfo(mount).AvailableFreeSpace / share / 4096 * 4096, seed: 10);
            return big;
        }

        /// <summary>
        /// Files of <paramref name="size"/> bytes (the same content each) in pieces of
        /// <paramref name="chunk"/> bytes on any filesystem, with free space left to defragment them
        /// into: the filesystem at <paramref name="mount"/> is filled with chunk-sized files and every
        /// other one is deleted, the files are written into the gaps, then the rest of the filler is
        /// deleted. Returns the files' content hash.
        /// </summary>
        internal static string FragmentedWithRoomToDefragment(string mount, int chunk, long size, params string[] paths)
        {
            List<string> kept = FillAndPunch(mount, chunk);
            foreach (string p in paths)
            {
                WriteLarge(p, size, seed: 11);
            }

            foreach (string f in kept)
            {
                File.Delete(f);
            }

            Shell.Run("sync");
            return FileFacts.Hash(paths[0]);
        }

        /// <summary>Fragments the free space of the (small, test-owned) filesystem at <paramref name="mount"/>: filled with files of <paramref name="chunk"/> bytes, every other one deleted.</summary>
        internal static void FragmentFreeSpace(string mount, int chunk) => FillAndPunch(mount, chunk);

        /// <summary>Fills the filesystem with files of <paramref name="chunk"/> bytes and deletes every other one; returns those left.</summary>
        private static List<string> FillAndPunch(string mount, int chunk)
        {
            // xfs keeps a reserve of blocks that writers cannot fill but the next allocation may get in
            // one piece: without it, the whole free space is the gaps.
            bool xfs = Shell.Run("stat", "-f", "-c", "%T", mount).Trim() == "xfs";
            string? reserve = xfs ? Shell.Run("xfs_io", "-x", "-c", "resblks", mount).Split('\n')[0].Split('=')[1].Trim() : null;
            if (xfs)
            {
                Shell.Run("xfs_io", "-x", "-c", "resblks 0", mount);
            }

            string fill = Directory.CreateDirectory(Path.Combine(mount, "fill")).FullName;
            byte[] data = RandomBytes(chunk, 9);
            var files = new List<string>();
            try
            {
                for (int n = 0; ; n++)
                {
                    string name = Path.Combine(fill, n.ToString(System.Globalization.CultureInfo.InvariantCulture));
                    files.Add(name);
                    using var f = new FileStream(name, FileMode.CreateNew, FileAccess.Write);
                    f.Write(data);
                }
            }
            catch (IOException)
            {
                // full
            }

            Shell.Run("sync");
            var kept = new List<string>();
            for (int i = 0; i < files.Count; i++)
            {
                if (i % 2 == 0)
                {
                    File.Delete(files[i]);
                }
                else
                {
                    kept.Add(files[i]);
                }
            }

            Shell.Run("sync");
            if (reserve is not null)
            {
                Shell.Run("xfs_io", "-x", "-c", "resblks " + reserve, mount);
            }

            return kept;
        }

        /// <summary>Writes <paramref name="size"/> bytes of a repeated random MiB, then fsyncs.</summary>
        private static void WriteLarge(string path, long size, int seed)
        {
            byte[] data = RandomBytes(1 << 20, seed);
            using var f = new FileStream(path, FileMode.CreateNew, FileAccess.Write);
            for (long done = 0; done < size; done += data.Length)
            {
                f.Write(data, 0, (int)Math.Min(data.Length, size - done));
            }

            f.Flush(flushToDisk: true);
        }

        /// <summary>Creates a file of <paramref name="size"/> bytes with no data at all (one hole).</summary>
        internal static void Sparse(string path, long size)
        {
            using var fs = new FileStream(path, FileMode.Create, FileAccess.Write);
            fs.SetLength(size);
        }
    }
}
