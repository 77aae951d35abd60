namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using System.Globalization;
    using System.IO;
    using System.Linq;
    using System.Text;
    using Btrfs.Interop;
    using Btrfs.Kernel;

    /// <summary>One line of /proc/self/mountinfo (proc(5)).</summary>
    internal sealed record MountEntry(
        ulong MountId,
        uint Major,
        uint Minor,
        string Root,
        string MountPoint,
        string MountOptions,
        string FileSystemType,
        string Source,
        string SuperOptions)
    {
        /// <summary>The id of the mount this one is mounted on (the second field).</summary>
        internal ulong ParentId { get; init; }

        /// <summary>The option (per-mount or superblock), e.g. "ro", "nodatacow", or the value of "compress=zstd:3" for "compress".</summary>
        internal string? Option(string name)
        {
            foreach (string list in new[] { MountOptions, SuperOptions })
            {
                foreach (string o in list.Split(','))
                {
                    int eq = o.IndexOf('=');
                    string key = eq < 0 ? o : o[..eq];
                    if (key == name)
                    {
                        return eq < 0 ? string.Empty : o[(eq + 1)..];
                    }
                }
            }

            return null;
        }

        internal bool HasOption(string name) => Option(name) is not null;

        /// <summary>An overlay's layer directories from its super options (lowerdir, ':'-separated; upperdir, workdir, lowerdir+, datadir+, one path each), as given when it was mounted; none for other mounts.</summary>
        internal IEnumerable<string> OverlayLayers()
        {
            if (FileSystemType != "overlay")
            {
                yield break;
            }

            foreach (string option in SuperOptions.Split(','))
            {
                int eq = option.IndexOf('=', StringComparison.Ordinal);
                string key = eq < 0 ? option : option[..eq];
                if (key is "lowerdir+" or "upperdir" or "workdir" or "datadir+")
                {
                    // One path each, printed as it is (only the legacy lowerdir= is a ':'-separated list).
                    if (option[(eq + 1)..] is { Length: > 0 } one)
                    {
                        yield return MountTable.Unescape(one);
                    }
                }
                else if (key is "lowerdir")
                {
                    int start = 0;
                    string value = option[(eq + 1)..];
                    for (int i = 0; i <= value.Length; i++)
                    {
                        if (i < value.Length && value[i] == '\\')
                        {
                            i++;
                        }
                        else if (i == value.Length || value[i] == ':')
                        {
                            // mountinfo writes a space, tab, newline, backslash or comma in octal (\040); a ':' in a layer as "\:".
                            string dir = value[start..Math.Min(i, value.Length)];
                            start = i + 1;
                            if (dir.Length > 0)
                            {
                                yield return MountTable.Unescape(dir.Replace("\\:", ":", StringComparison.Ordinal));
                            }
                        }
                    }
                }
            }
        }

        /// <summary>The compression mount option ("compress=zstd:3", "compress-force=lzo"), or null.</summary>
        internal string? CompressOption =>
            Option("compress-force") is string f ? "compress-force" + (f.Length > 0 ? "=" + f : string.Empty)
            : Option("compress") is string c ? "compress" + (c.Length > 0 ? "=" + c : string.Empty)
            : null;
    }

    /// <summary>
    /// Another mount namespace's table: how to name it, the prefix that reaches its paths from here
    /// (/proc/PID/root; null when it was read from inside), and for one read from inside what its overlay
    /// layers resolved to there.
    /// </summary>
    internal sealed record ForeignMountTable(string Name, string? Prefix, MountTable Table, IReadOnlyDictionary<string, FileStatus?>? Resolved);

    /// <summary>A snapshot of /proc/self/mountinfo.</summary>
    internal sealed class MountTable
    {
        private readonly List<MountEntry> entries;

        private readonly Dictionary<ulong, MountEntry> byId = new();

        private readonly Dictionary<ulong, List<MountEntry>> byParent = new();

        private MountTable(List<MountEntry> entries)
        {
            this.entries = entries;
            foreach (MountEntry e in entries)
            {
                byId.TryAdd(e.MountId, e);
            }

            foreach (MountEntry e in entries)
            {
                if (e.ParentId != e.MountId && byId.ContainsKey(e.ParentId))
                {
                    if (!byParent.TryGetValue(e.ParentId, out List<MountEntry>? children))
                    {
                        byParent[e.ParentId] = children = new List<MountEntry>();
                    }

                    children.Add(e);
                }
            }
        }

        internal IReadOnlyList<MountEntry> Entries => entries;

        internal static MountTable Read() => Parse(File.ReadAllText("/proc/self/mountinfo"));

        /// <summary>
        /// The mount table as it is now, read and parsed again only when the kernel says it changed
        /// (<see cref="MountInfo"/>): for checks made once per file.
        /// </summary>
        internal static MountTable Current()
        {
            string text = MountInfo.Text(out _);
            Parsed? last = lastParsed;
            if (last is not null && ReferenceEquals(last.Text, text))
            {
                return last.Table;
            }

            MountTable table = Parse(text);
            lastParsed = new Parsed(text, table);
            return table;
        }

        private static Parsed? lastParsed;

        private sealed record Parsed(string Text, MountTable Table);

        /// <summary>
        /// The mount a path (absolute, as this process sees it, without symbolic links) is on by its text, found
        /// as a lookup goes: from the mount at the top, into the mount on the shortest mount point above the path
        /// among those mounted on the current one. One mounted on the same mount point covers all of the one
        /// below; one on a directory hides those mounted deeper before it. (mountinfo lists mounts in the order
        /// they were made, which `mount --move` makes differ from the order they are stacked.) Null for a
        /// relative path.
        /// </summary>
        internal MountEntry? Covering(string path)
        {
            MountEntry? current = null;
            foreach (MountEntry e in entries)
            {
                bool top = e.ParentId == e.MountId || !byId.ContainsKey(e.ParentId);
                if (top && Above(e, path) && (current is null || e.MountPoint.Length > current.MountPoint.Length))
                {
                    current = e;
                }
            }

            if (current is null)
            {
                return Deepest(entries, path);
            }

            for (int depth = 0; depth < entries.Count && byParent.TryGetValue(current.MountId, out List<MountEntry>? children); depth++)
            {
                // The lookup meets the shortest mount point first (one stacked on the current one's own point
                // before all): a mount on a deeper point of a directory it covers is hidden.
                MountEntry? next = null;
                foreach (MountEntry child in children)
                {
                    if (Above(child, path) && (next is null || child.MountPoint.TrimEnd('/').Length <= next.MountPoint.TrimEnd('/').Length))
                    {
                        next = child;
                    }
                }

                if (next is null)
                {
                    break;
                }

                current = next;
            }

            return current;
        }

        /// <summary>
        /// Of <paramref name="mounts"/> (in mount order; some of a table, so not a tree), the one whose mount point is
        /// the deepest above <paramref name="path"/> by its text; of several there, the one no other there is mounted
        /// on (else the last listed). Null when none is.
        /// </summary>
        internal static MountEntry? Deepest(IEnumerable<MountEntry> mounts, string path)
        {
            var best = new List<MountEntry>();
            foreach (MountEntry e in mounts)
            {
                if (!Above(e, path))
                {
                    continue;
                }

                if (best.Count > 0 && e.MountPoint.TrimEnd('/').Length > best[0].MountPoint.TrimEnd('/').Length)
                {
                    best.Clear();
                }

                if (best.Count == 0 || SamePoint(e, best[0]))
                {
                    best.Add(e);
                }
            }

            return best.Count == 0 ? null : best.FindLast(e => !best.Exists(o => o.ParentId == e.MountId && !ReferenceEquals(o, e))) ?? best[^1];
        }

        private static bool Above(MountEntry e, string path)
        {
            string mp = e.MountPoint.Length > 1 ? e.MountPoint.TrimEnd('/') : e.MountPoint;
            return mp == "/" ? path.StartsWith('/') : path == mp || path.StartsWith(mp + "/", StringComparison.Ordinal);
        }

        private static bool SamePoint(MountEntry a, MountEntry b) =>
            string.Equals(a.MountPoint.TrimEnd('/'), b.MountPoint.TrimEnd('/'), StringComparison.Ordinal);

        /// <summary>Network and FUSE filesystems: the ones whose server may stop answering (and that hold no btrfs subvolume's files).</summary>
        internal static bool IsRemote(string fileSystemType) =>
            fileSystemType is "nfs" or "nfs4" or "cifs" or "smb3" or "9p" or "ceph" or "afs" or "glusterfs" or "fuse" or "fuseblk"
            || fileSystemType.StartsWith("fuse.", StringComparison.Ordinal);

        internal static MountTable Parse(string text)
        {
            var list = new List<MountEntry>();
            foreach (string line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                // id parent major:minor root mountpoint options [optional...] - fstype source superoptions
                string[] f = line.Split(' ');
                int dash = Array.IndexOf(f, "-", 6);
                if (dash < 0 || dash + 2 >= f.Length)
                {
                    continue;
                }

                string[] dev = f[2].Split(':');
                list.Add(new MountEntry(
                    ulong.Parse(f[0], CultureInfo.InvariantCulture),
                    uint.Parse(dev[0], CultureInfo.InvariantCulture),
                    uint.Parse(dev[1], CultureInfo.InvariantCulture),
                    Unescape(f[3]),
                    Unescape(f[4]),
                    f[5],
                    f[dash + 1],
                    Unescape(f[dash + 2]),
                    dash + 3 < f.Length ? f[dash + 3] : string.Empty) { ParentId = ulong.Parse(f[1], CultureInfo.InvariantCulture) });
            }

            return new MountTable(list);
        }

        /// <summary>
        /// The mount tables of the other mount namespaces (containers, unshare, systemd's private mounts), each
        /// with how to name it and the prefix that reaches its paths from here (/proc/PID/root), or, for one read
        /// from inside, what its overlay layers resolve to there. A table is read per namespace through a process
        /// whose root is "/" (a chrooted process shows only the mounts below its root). As root, a namespace whose
        /// processes are all chrooted, and one no process is in (kept by a bind mount of its nsfs file, as snapd
        /// and `unshare --mount=FILE` do; also one kept inside such a namespace), are read from inside by a thread
        /// of this process that enters it (nothing of it is run; at most 256 such). Where the namespace cannot be
        /// told (another user's process: its /proc/PID/ns/mnt is closed to this user, its mountinfo is not), each
        /// such table is read, identical tables once.
        /// </summary>
        internal static List<ForeignMountTable> OtherNamespaces(out List<string> unreadable)
        {
            unreadable = new List<string>();
            TimeSpan bound = TimeSpan.FromSeconds(10);
            var tables = new List<ForeignMountTable>();
            string? own = Link("self", "ns/mnt");
            var settled = new HashSet<string>(StringComparer.Ordinal); // namespaces read (or on their way)
            var chrooted = new Dictionary<string, (int Pid, string Command)>(StringComparer.Ordinal);
            var texts = new HashSet<string>(StringComparer.Ordinal) { File.ReadAllText("/proc/self/mountinfo") };
            if (own is not null)
            {
                settled.Add(own);
            }

            foreach (string dir in Directory.EnumerateDirectories("/proc"))
            {
                string name = Path.GetFileName(dir);
                if (!int.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
                {
                    continue;
                }

                string? ns = Link(name, "ns/mnt");
                if (ns is not null && settled.Contains(ns))
                {
                    continue;
                }

                try
                {
                    string command = File.ReadAllText($"/proc/{name}/comm").TrimEnd('\n');
                    if (ns is not null && Link(name, "root") != "/")
                    {
                        chrooted.TryAdd(ns, (pid, command)); // its table shows only what is below its root
                        continue;
                    }

                    string text = File.ReadAllText($"/proc/{name}/mountinfo");
                    if (ns is not null)
                    {
                        settled.Add(ns);
                    }

                    if (texts.Add(text))
                    {
                        tables.Add(new ForeignMountTable($"that of process {pid}, {command}", $"/proc/{name}/root", Parse(text), null));
                    }
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    // Gone meanwhile, or not readable: another process of its namespace may do.
                }
            }

            // From inside: the namespaces whose processes are all chrooted, those kept at a path in a table read so
            // far, and (breadth first) those kept inside the ones read from inside.
            var inside = new Queue<(SafeFileDescriptor Namespace, string Name)>();
            foreach ((string ns, (int pid, string command)) in chrooted)
            {
                if (!settled.Contains(ns) && Bounded.Run(() => Namespaces.OpenMountNamespace($"/proc/{pid}/ns/mnt", followLink: true), bound, out _) is SafeFileDescriptor fd)
                {
                    settled.Add(ns);
                    inside.Enqueue((fd, $"that of process {pid}, {command}, chrooted"));
                }
            }

            var readable = new List<(string Prefix, MountTable Table)> { (string.Empty, Read()) };
            readable.AddRange(tables.Select(t => (t.Prefix!, t.Table)));
            foreach ((string prefix, MountTable table) in readable)
            {
                foreach ((string at, ulong id) in table.KeptNamespaces())
                {
                    if (!settled.Add($"mnt:[{id}]"))
                    {
                        continue;
                    }

                    // The path is looked up in this process (through /proc/PID/root for another namespace): bounded.
                    SafeFileDescriptor? fd = Bounded.Run(() => Namespaces.OpenMountNamespace(prefix + at, id), bound, out bool slow);
                    if (fd is not null)
                    {
                        inside.Enqueue((fd, $"one no process is in, kept at '{at}'"));
                    }
                    else if (slow)
                    {
                        unreadable.Add($"one kept at '{at}', whose path did not answer within {bound.TotalSeconds} s");
                    }
                }
            }

            for (int n = 0; inside.Count > 0; n++)
            {
                (SafeFileDescriptor fd, string name) = inside.Dequeue();
                using (fd)
                {
                    if (n >= 256)
                    {
                        unreadable.Add($"{name} (more than 256 namespaces to read from inside)");
                        continue;
                    }

                    NamespaceView? view = Namespaces.ReadInside(fd, Wanted, bound, out bool timedOut);
                    if (view is null)
                    {
                        if (timedOut)
                        {
                            unreadable.Add($"{name}, where a mount did not answer within {bound.TotalSeconds} s");
                        }

                        continue;
                    }

                    if (texts.Add(view.Table))
                    {
                        tables.Add(new ForeignMountTable(name, null, Parse(view.Table), view.Resolved));
                    }

                    foreach ((string at, ulong id, SafeFileDescriptor kept) in view.Kept)
                    {
                        if (settled.Add($"mnt:[{id}]"))
                        {
                            inside.Enqueue((kept, $"one no process is in, kept at '{at}' inside {name}"));
                        }
                        else
                        {
                            kept.Dispose();
                        }
                    }
                }
            }

            return tables;

            static (IReadOnlyList<string> Look, IReadOnlyList<(string Path, ulong Id)> Kept) Wanted(string text)
            {
                MountTable table = Parse(text);
                return (table.Entries.SelectMany(e => e.OverlayLayers()).ToList(), table.KeptNamespaces());
            }
        }

        /// <summary>The mount namespaces kept at a path in this table (bind mounts of nsfs files "mnt:[N]"): the mount point and N.</summary>
        internal List<(string Path, ulong Id)> KeptNamespaces()
        {
            var kept = new List<(string, ulong)>();
            foreach (MountEntry e in entries)
            {
                if (e.FileSystemType == "nsfs" && e.Root.StartsWith("mnt:[", StringComparison.Ordinal) && e.Root.EndsWith(']')
                    && ulong.TryParse(e.Root[5..^1], NumberStyles.None, CultureInfo.InvariantCulture, out ulong id))
                {
                    kept.Add((e.MountPoint, id));
                }
            }

            return kept;
        }

        /// <summary>
        /// Where this table shows the path <paramref name="inside"/> (from the top level of the filesystem whose
        /// superblock is <paramref name="major"/>:<paramref name="minor"/>, e.g. "/vm/snap") or anything below
        /// it: a mount whose root is there (subvol=, a bind mount), or a mount on a directory there. Its
        /// mount point, or null.
        /// </summary>
        internal string? Showing(uint major, uint minor, string inside)
        {
            foreach (MountEntry e in entries)
            {
                if (e.Major == major && e.Minor == minor && AtOrBelow(e.Root, inside))
                {
                    return e.MountPoint;
                }

                if (MountPointFromTop(e, major, minor) is string on && AtOrBelow(on, inside))
                {
                    return e.MountPoint;
                }
            }

            return null;
        }

        /// <summary>
        /// A mount in this table made on the name <paramref name="fromTop"/> of the filesystem <paramref name="major"/>:<paramref
        /// name="minor"/> (its path from the filesystem's top level, e.g. "/vm/disk.img"): found by the mount it was made in
        /// (its parent's root and mount point), so also where a later mount covers the directory holding it, and without
        /// looking anything up (nothing that may not answer is asked). Null: none.
        /// </summary>
        internal MountEntry? MountedOn(uint major, uint minor, string fromTop)
        {
            foreach (MountEntry e in entries)
            {
                if (e.MountPoint != "/" && MountPointFromTop(e, major, minor) == fromTop)
                {
                    return e;
                }
            }

            return null;
        }

        /// <summary>
        /// Where mount <paramref name="e"/> was made, as a path from the top level of the filesystem <paramref name="major"/>:<paramref
        /// name="minor"/> of the mount it was made in (that mount's root and mount point); null when it was made in another.
        /// </summary>
        private string? MountPointFromTop(MountEntry e, uint major, uint minor)
        {
            if (ById(e.ParentId) is not MountEntry p || p.MountId == e.MountId || p.Major != major || p.Minor != minor || !AtOrBelow(e.MountPoint, p.MountPoint))
            {
                return null;
            }

            return p.Root.TrimEnd('/') + (p.MountPoint == "/" ? e.MountPoint : e.MountPoint[p.MountPoint.Length..]);
        }

        /// <summary>
        /// A mount in this table of the filesystem <paramref name="major"/>:<paramref name="minor"/> through which the directory
        /// <paramref name="directory"/> (from the top level, e.g. "/vm") can be reached: its root is that directory or one above it.
        /// Its mount point, or null.
        /// </summary>
        internal string? Reaching(uint major, uint minor, string directory)
        {
            foreach (MountEntry e in entries)
            {
                if (e.Major == major && e.Minor == minor && AtOrBelow(directory, e.Root))
                {
                    return e.MountPoint;
                }
            }

            return null;
        }

        private static bool AtOrBelow(string path, string top) =>
            top == "/" || path == top || path.StartsWith(top.TrimEnd('/') + "/", StringComparison.Ordinal);

        private static string? Link(string pid, string link)
        {
            try
            {
                return new FileInfo($"/proc/{pid}/{link}").LinkTarget;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                return null;
            }
        }

        /// <summary>The mount with this id (statx stx_mnt_id), or null.</summary>
        internal MountEntry? ById(ulong mountId) => byId.TryGetValue(mountId, out MountEntry? e) ? e : null;

        /// <summary>The mount an open file lives on.</summary>
        internal MountEntry? For(OpenFile file) => file.Status.MountId != 0 ? ById(file.Status.MountId) : null;

        /// <summary>Mount points are written with \040 (space), \011 (tab), \012 (newline), \134 (backslash).</summary>
        internal static string Unescape(string s)
        {
            if (!s.Contains('\\', StringComparison.Ordinal))
            {
                return s;
            }

            var bytes = new List<byte>(s.Length);
            for (int i = 0; i < s.Length; i++)
            {
                if (s[i] == '\\' && i + 3 < s.Length && IsOctal(s[i + 1]) && IsOctal(s[i + 2]) && IsOctal(s[i + 3]))
                {
                    bytes.Add((byte)(((s[i + 1] - '0') << 6) | ((s[i + 2] - '0') << 3) | (s[i + 3] - '0')));
                    i += 3;
                }
                else if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
                {
                    bytes.AddRange(Encoding.UTF8.GetBytes(s.Substring(i, 2))); // a character beyond U+FFFF is two chars
                    i++;
                }
                else
                {
                    bytes.AddRange(Encoding.UTF8.GetBytes(s[i].ToString()));
                }
            }

            return Encoding.UTF8.GetString(bytes.ToArray());
        }

        private static bool IsOctal(char c) => c is >= '0' and <= '7';
    }
}
