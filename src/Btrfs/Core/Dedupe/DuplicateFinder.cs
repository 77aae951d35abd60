namespace Btrfs.Core
{
    using System;
    using System.Collections.Concurrent;
    using System.Collections.Generic;
    using System.IO.Hashing;
    using System.Linq;
    using System.Threading;
    using Btrfs.Kernel;

    /// <summary>
    /// How far a search is: bytes read (and the most there can be to read), and the data of the files done
    /// so far, whichever way (read, taken from btrfs's checksums, or from the hash file), of all the data;
    /// Busy is the time the scan has spent on files so far (not waiting for the walk to find the next), the
    /// time its rate is of.
    /// </summary>
    internal readonly record struct DuplicateScanProgress(long BytesRead, long BytesTotal, int FilesDone, int Files, string? Current, long DataDone = 0, long Data = 0, TimeSpan Busy = default);

    /// <summary>
    /// Find-BtrfsDuplicate's Core: takes files (<see cref="Add"/>) and reads each once (from <see cref="StartScanning"/>
    /// on, on a thread of its own while more are taken; else in <see cref="Find"/>), in the order taken,
    /// sequentially in large requests, hashing every block (XxHash128; a partial last block seeded with its length), and groups equal blocks of
    /// all the files; runs of equal adjacent blocks become one range. Holes, unwritten and inline extents
    /// are not data and are skipped; a block whose extent another block already maps (a reflink or an
    /// earlier dedupe) is neither read nor hashed: it takes the hash of the block that was read. The hash
    /// only finds candidates: FIDEDUPERANGE compares the bytes when the group is deduplicated.
    /// Blocks of zeros are kept aside as runs, never indexed: they start no range (zeros alone: a hole does better), but
    /// a range goes on through the zeros its copies have at the same places (they hold the extents it frees). Blocks are only compared within one filesystem
    /// and, on btrfs, one checksum class (NOCOW files with NOCOW files), since only those can share.
    /// Memory: the index of hashed blocks (64 bytes each) and the map of shared blocks already hashed are
    /// each held to <see cref="MemoryBlocks"/> entries; a larger index moves to a temporary database on disk
    /// (<see cref="BlockIndex"/>). What stays is per file (its name and status), per block of the file
    /// being read (34 bytes), and per block found twice or more (its group and disk address).
    /// </summary>
    internal sealed class DuplicateFinder : IDisposable
    {
        /// <summary>Blocks held in memory before the index moves to disk (64 bytes each: 64 MiB, 128 GiB of data at 128 KiB blocks).</summary>
        internal const int DefaultMemoryBlocks = 1 << 20;

        /// <summary>
        /// Bytes per read request (two buffers: one read while the other is hashed). 4 MiB: with 8 MiB the
        /// search grew the process by 28 MiB against 20 MiB, reading no faster (btrfs and xfs loop devices,
        /// 2.3 GB, bench `duplicates`).
        /// </summary>
        private const int ReadSize = 4 << 20;

        /// <summary>Blocks this close on disk (bytes between them) are asked for in one search of the checksum tree.</summary>
        private const long ChecksumGap = 16 << 20;

        /// <summary>Blocks whose checksums are gathered at a time (64 MiB at 128 KiB blocks; 64 KiB of crc32c checksums, 512 KiB of sha256).</summary>
        private const int ChecksumChunk = 512;

        /// <summary>The most disk bytes one search of the checksum tree covers (64 KiB of crc32c checksums, 512 KiB of sha256).</summary>
        private const long ChecksumWindow = 64 << 20;

        /// <summary>The largest block size (-BlockSize): a request then holds one block.</summary>
        internal const int MaxBlockSize = 8 << 20;
        private readonly List<Candidate> files = new();
        private readonly HashSet<(uint, uint, ulong)> inodes = new();
        private readonly List<string> classes = new();
        private readonly List<SectorChecksums?> classSums = new();
        private bool checksumTree = true;
        private readonly Dictionary<(uint, uint), (string Key, ulong Id)> fileSystemOfDevice = new();
        private readonly Dictionary<(uint, uint), bool> searchable = new(); // btrfs device -> whether its trees can be searched (root)
        private readonly HashFile? hashFile;

        // The scan (see StartScanning): files are read on a thread of its own as they are taken. The gate guards
        // files, classSums, DataBytes, adding and the last progress; what the scan alone touches (the index, the
        // blocks known, the counters) is read by others only after it has ended.
        private readonly object gate = new();
        private readonly ConcurrentQueue<FileOperationException> skippedFiles = new();
        private bool adding = true;
        private DuplicateScanProgress? lastProgress;
        private CancellationTokenSource? stopScan;
        private System.Threading.Tasks.Task<(BlockIndex Index, TimeSpan Took)>? scan;

        /// <summary>A search comparing blocks of <paramref name="blockSize"/> bytes; with <paramref name="hashFile"/>, unchanged files are not read again and what is read is recorded there.</summary>
        internal DuplicateFinder(int blockSize, long minimumSize, HashFile? hashFile = null)
        {
            this.hashFile = hashFile;
            if (blockSize < 4096 || blockSize % 4096 != 0 || blockSize > MaxBlockSize)
            {
                throw new ArgumentOutOfRangeException(nameof(blockSize), blockSize, "The block size must be a multiple of 4096 bytes, at most 8 MiB.");
            }

            BlockSize = blockSize;
            RequestSize = Math.Max(ReadSize, blockSize);
            MinimumSize = Math.Max(minimumSize, blockSize);
        }

        internal int BlockSize { get; }

        /// <summary>Bytes per read request: <see cref="ReadSize"/>, or one block where blocks are larger.</summary>
        private int RequestSize { get; }

        internal long MinimumSize { get; }

        /// <summary>Files taken.</summary>
        internal int Count
        {
            get
            {
                lock (gate)
                {
                    return files.Count;
                }
            }
        }

        /// <summary>Bytes of data the taken files hold (their allocated size): what a scan reads at most (read under the gate while the scan runs).</summary>
        internal long DataBytes { get; private set; }

        /// <summary>After <see cref="Find"/>: bytes read from the files.</summary>
        internal long BytesRead { get; private set; }

        /// <summary>After <see cref="Find"/>: files hashed (some or all of their blocks read, or fingerprinted from btrfs's checksums).</summary>
        internal int FilesRead { get; private set; }

        /// <summary>After <see cref="Find"/>: bytes of blocks whose fingerprints came from btrfs's data checksums (not read).</summary>
        internal long BytesFromChecksums { get; private set; }

        /// <summary>
        /// Whether blocks on btrfs are fingerprinted from the checksum tree where it can be searched (as root)
        /// instead of being read (default). Off, every block is read and its bytes hashed, as everywhere else.
        /// </summary>
        internal bool UseChecksumTree { get; init; } = true;

        /// <summary>After <see cref="Find"/>: files whose hashes came from the hash file, unchanged since (not read).</summary>
        internal int FilesFromHashFile { get; private set; }

        /// <summary>
        /// The memory budget, in blocks: the index of hashed blocks, and the map of shared extents' blocks
        /// already hashed, each hold at most this many; beyond it the index moves to a temporary database on
        /// disk, and shared blocks are read again rather than remembered.
        /// </summary>
        internal int MemoryBlocks { get; init; } = DefaultMemoryBlocks;

        /// <summary>After <see cref="Find"/>: time spent reading and hashing, grouping, and crediting what each group frees.</summary>
        internal (TimeSpan Scan, TimeSpan Group, TimeSpan Credit) Times { get; private set; }

        /// <summary>After <see cref="Find"/>: the index outgrew <see cref="MemoryBlocks"/> and was moved to disk.</summary>
        internal bool Spilled { get; private set; }

        /// <summary>
        /// Takes the regular file <paramref name="path"/> (not followed if it is a link). False, taking
        /// nothing, when it is smaller than <see cref="MinimumSize"/> or another name of a file taken already.
        /// </summary>
        internal bool Add(string path)
        {
            using OpenFile file = OpenFile.Open(path, OpenOptions.NoFollow);
            return Add(file);
        }

        /// <summary>
        /// As <see cref="Add(string)"/>, for a file the tree walker found: its size is looked at relative to
        /// its directory first (a file under <see cref="MinimumSize"/> is never opened), then it is opened
        /// relative to that directory, never through a link, never by its path again.
        /// </summary>
        internal bool Add(FileLocation location)
        {
            if (FileStatus.OfAt(location.Directory, location.Name) is FileStatus { IsRegular: true } st && st.Size < MinimumSize)
            {
                return false;
            }

            using OpenFile file = OpenFile.Open(location, OpenOptions.NoFollow | OpenOptions.KnownRegular);
            return Add(file);
        }

        /// <summary>Devices whose files have no extent map (FIEMAP): said once, their other files passed over.</summary>
        private readonly HashSet<(uint, uint)> withoutExtentMaps = new();

        private bool Add(OpenFile file)
        {
            lock (gate)
            {
                if (!adding)
                {
                    throw new InvalidOperationException("Files are taken before Find.");
                }
            }

            FileGuards.ThrowIfSwapfile(file, "look for duplicates in {0}");
            (uint, uint, ulong) inode = (file.Status.DevMajor, file.Status.DevMinor, file.Status.Inode);
            if (file.Size < MinimumSize || hashFile?.OwnFiles.Contains(inode) == true || !inodes.Add(inode))
            {
                return false; // too small, the hash file itself (it changes while we run), or seen already
            }

            // Only ranges of one filesystem, and on btrfs of one checksum class (NOCOW or not), can share
            // extents: blocks are grouped within such a class only, and physical addresses compared within it.
            (uint, uint) dev = (file.Status.DevMajor, file.Status.DevMinor);
            if (!fileSystemOfDevice.TryGetValue(dev, out (string Key, ulong Id) fs))
            {
                // btrfs gives every subvolume a device of its own: its filesystem id joins them (asked once per device).
                // statfs' f_fsid names the files' home in the hash file (stable across mounts on btrfs and ext4).
                fs.Key = file.FileSystem.Kind == FileSystemKind.Btrfs
                    ? "btrfs:" + (BtrfsSearch.FileSystemId(file)?.ToString() ?? $"{dev.Item1}:{dev.Item2}")
                    : $"{file.FileSystem.Kind}:{dev.Item1}:{dev.Item2}";
                fs.Id = hashFile is null ? 0 : Files.FileSystemIdOf(file.Handle);
                fileSystemOfDevice[dev] = fs;
            }

            // The class is the checksums': a NOCOW file has none, nor has one written while the filesystem was mounted
            // nodatasum (no attribute shows it: read from its inode item where the tree can be searched, as root).
            // Before, such a file was grouped with checksummed copies, credited, and the kernel refused it (a hostile review).
            bool search = false;
            if (file.FileSystem.Kind == FileSystemKind.Btrfs && !searchable.TryGetValue(dev, out search))
            {
                searchable[dev] = search = BtrfsSearch.CanSearch(file);
            }

            bool noCow = file.FileSystem.Kind == FileSystemKind.Btrfs && ChecksumState.Absent(file, search, out _);
            string key = fs.Key + (noCow ? ":nocow" : string.Empty);
            int cls = classes.IndexOf(key);
            SectorChecksums? sums = null;
            if (cls < 0)
            {
                // On btrfs (not NOCOW: no checksums there), where the checksum tree can be searched (root), a
                // block's fingerprint is made of its sectors' checksums; otherwise of its bytes, as everywhere.
                sums = UseChecksumTree && file.FileSystem.Kind == FileSystemKind.Btrfs && !noCow && BtrfsSearch.ChecksumInfo(file) is var (type, size, sector, node) && BtrfsSearch.CanSearch(file)
                    ? SectorChecksums.For(type, size, sector, node, BlockSize)
                    : null;
            }

            uint generation = InodeAttributes.TryGetGeneration(file.Handle) ?? 0;
            lock (gate)
            {
                if (cls < 0)
                {
                    cls = classes.Count;
                    classes.Add(key);
                    classSums.Add(sums);
                }

                files.Add(new Candidate(file.Path, file.Status, cls, fs.Id) { Tail = (int)(file.Size % BlockSize), Generation = generation, BlockByBlock = file.FileSystem.Kind != FileSystemKind.Btrfs });
                DataBytes += Math.Min(file.Status.AllocatedBytes, file.Size);
                Monitor.PulseAll(gate);
            }

            return true;
        }

        /// <summary>
        /// Starts reading and hashing the files on a thread of its own, each as soon as it is taken, in the order
        /// taken (the same order, and so the same blocks read, as without it): the walk that finds the files goes
        /// on meanwhile. <see cref="Find"/> starts it if nobody did. A file that cannot be read is kept for
        /// <see cref="Find"/> to tell, in order, after the walk. Whoever starts it must dispose this finder
        /// (<see cref="Dispose"/> stops the scan and waits for it) before the hash file.
        /// </summary>
        internal void StartScanning(CancellationToken cancel)
        {
            if (scan is not null)
            {
                return;
            }

            stopScan = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            CancellationToken token = stopScan.Token;
            void Keep(DuplicateScanProgress p)
            {
                lock (gate)
                {
                    lastProgress = p;
                }
            }

            scan = System.Threading.Tasks.Task.Factory.StartNew(() => ScanAll(token, Keep, skippedFiles.Enqueue), token, System.Threading.Tasks.TaskCreationOptions.LongRunning, System.Threading.Tasks.TaskScheduler.Default);
        }

        /// <summary>Stops the scan (if it still runs) and waits until it has: nothing reads a file or the hash file after this.</summary>
        public void Dispose()
        {
            stopScan?.Cancel();
            lock (gate)
            {
                adding = false; // and the scan, if it waits for the next file, wakes now
                Monitor.PulseAll(gate);
            }

            if (scan is not null)
            {
                try
                {
                    scan.Wait(CancellationToken.None);
                    scan.Result.Index.Dispose(); // a scan nobody took the result of (Find did not get there)
                }
                catch (AggregateException)
                {
                    // Stopped, or failed: Find tells why when it gets there; nobody is left to tell otherwise.
                }

                scan = null;
            }

            stopScan?.Dispose();
            stopScan = null;
        }

        /// <summary>
        /// Reads and hashes the files and returns the groups, those with the most bytes to share first. A file
        /// that cannot be read, or that changed since it was taken, is told to <paramref name="skipped"/>
        /// and left out.
        /// </summary>
        internal List<BtrfsDuplicateGroup> Find(CancellationToken cancel, Action<DuplicateScanProgress>? progress = null, Action<FileOperationException>? skipped = null)
        {
            // 1. Every block of every file: its hash, or none (a hole, an unwritten or partial block). Read here, or
            //    by the scan started before (StartScanning), whose progress and skipped files are told here as they come.
            lock (gate)
            {
                adding = false;
                Monitor.PulseAll(gate);
            }

            BlockIndex scannedIndex;
            TimeSpan scanned;
            if (scan is null)
            {
                (scannedIndex, scanned) = ScanAll(cancel, p => progress?.Invoke(p), ex => skipped?.Invoke(ex));
            }
            else
            {
                DuplicateScanProgress? told = null;
                void Tell()
                {
                    while (skippedFiles.TryDequeue(out FileOperationException? ex))
                    {
                        skipped?.Invoke(ex);
                    }

                    DuplicateScanProgress? now;
                    lock (gate)
                    {
                        // With every file taken now: the totals as they are (the scan may have said it mid-walk).
                        now = lastProgress is DuplicateScanProgress last
                            ? last with { Files = files.Count, Data = DataBytes, BytesTotal = DataBytes - (last.Data - last.BytesTotal) }
                            : null;
                    }

                    if (now is DuplicateScanProgress p && now != told)
                    {
                        told = now;
                        progress?.Invoke(p);
                    }
                }

                using CancellationTokenRegistration stopWith = cancel.Register(() => stopScan?.Cancel()); // this caller's Ctrl+C too
                while (!((IAsyncResult)scan).AsyncWaitHandle.WaitOne(100))
                {
                    Tell();
                }

                Tell();
                (scannedIndex, scanned) = scan.GetAwaiter().GetResult(); // its failure (Ctrl+C, the hash file) is this one's
                scan = null; // taken: Dispose has nothing left to dispose
            }

            var clock = System.Diagnostics.Stopwatch.StartNew();
            using BlockIndex index = scannedIndex;

            // 2. Equal hashes: each hash seen twice or more gets a group id, kept for those blocks only.
            Spilled = index.Spilled;
            int groupIds = NumberRepeatedHashes(index, cancel, out List<List<(int File, int Block)>> occurrences);
            index.Dispose();

            // 3. Runs of blocks whose groups follow each other in every copy become one range per copy. Blocks of zeros
            //    start none (zeros alone: a hole does better than a shared extent, fallocate --dig-holes), but a run goes
            //    on through those that every copy has at the same place, before it and after it: they are data of the
            //    extents the run frees, which stay as long as one block of them is left unshared (a hostile test: two
            //    copies of a file with 1 MiB of zeros written in its middle, one extent each, were found as two ranges
            //    without it, and deduplicating them freed nothing).
            var groups = new List<BtrfsDuplicateGroup>();
            var consumed = new bool[groupIds];
            var claimed = new ZeroClaims(); // blocks of zeros taken into a run
            for (int f = 0; f < files.Count; f++)
            {
                if (files[f].Repeated is not Dictionary<int, (int Group, BlockKey Where)> repeated)
                {
                    continue;
                }

                int[] blocks = repeated.Keys.ToArray();
                Array.Sort(blocks);
                foreach (int b in blocks)
                {
                    int g = repeated[b].Group;
                    if (consumed[g])
                    {
                        continue;
                    }

                    cancel.ThrowIfCancellationRequested();
                    List<(int File, int Block)> copies = occurrences[g];
                    int run = RunLength(copies, occurrences, consumed, claimed);
                    int before = ZerosBefore(copies, run, claimed);
                    if (before > 0)
                    {
                        copies = copies.ConvertAll(c => (c.File, c.Block - before));
                        run += before;
                    }

                    if (Group(copies, run) is BtrfsDuplicateGroup group)
                    {
                        groups.Add(group);
                    }

                    groups.AddRange(ZerosBeside(copies, run, claimed));
                }
            }

            TimeSpan grouped = clock.Elapsed;
            var taken = new Dictionary<string, FileStatus>(files.Count, StringComparer.Ordinal);
            foreach (Candidate c in files)
            {
                taken.TryAdd(c.Path, c.Status);
            }

            // Each group kept by the copy whose extents stay anyway; largest first; each group is credited with
            // the disk bytes it frees given that the groups before it are deduplicated too (an extent goes only
            // when its last reference does).
            using var ledger = new ReclaimLedger(path => taken.TryGetValue(path, out FileStatus st) ? st : null);
            List<BtrfsDuplicateGroup> ordered = ledger.WithKeepersThatStay(groups, cancel).OrderByDescending(g => g.DuplicateBytes).ThenBy(g => g.Path, StringComparer.Ordinal).ToList();
            List<long> credits = ordered.ConvertAll(g => ledger.Credit(g, cancel));
            List<BtrfsDuplicateGroup> credited = ordered.Select((g, i) => g.WithReclaimable(credits[i], ledger.Mark(g, cancel))).ToList();
            Times = (scanned, grouped, clock.Elapsed - grouped);
            return credited;
        }

        /// <summary>
        /// The scan's thread: each file in the order taken, waiting for the next while the walk goes on, until
        /// <see cref="Find"/> says no more come. Returns the index of every block hashed and the time it took
        /// (from the first file to the last).
        /// </summary>
        private (BlockIndex Index, TimeSpan Took) ScanAll(CancellationToken cancel, Action<DuplicateScanProgress> report, Action<FileOperationException> skipped)
        {
            var known = new Dictionary<(int Class, BlockKey Key), UInt128>(); // where a block of a shared extent is on disk -> its hash
            var index = new BlockIndex(MemoryBlocks);
            var busy = new System.Diagnostics.Stopwatch(); // running only while a file is scanned
            try
            {
                using AlignedBuffer first = AlignedBuffer.Rent(RequestSize), second = AlignedBuffer.Rent(RequestSize);
                AlignedBuffer[] buffers = { first, second };
                long read = 0, dataDone = 0;
                for (int f = 0; ; f++)
                {
                    Candidate c;
                    SectorChecksums? sums;
                    lock (gate)
                    {
                        while (f >= files.Count && adding)
                        {
                            cancel.ThrowIfCancellationRequested();
                            Monitor.Wait(gate, 100);
                        }

                        if (f >= files.Count)
                        {
                            break;
                        }

                        c = files[f];
                        sums = classSums[c.Class];
                    }

                    cancel.ThrowIfCancellationRequested();
                    busy.Start();
                    long data = Math.Min(c.Status.AllocatedBytes, c.Status.Size);
                    report(Progress(read, f, c.Path, dataDone, busy.Elapsed));
                    try
                    {
                        read += Scan(f, c, sums, known, index, buffers, cancel, n => report(Progress(read + n, f, c.Path, dataDone + Math.Min(n, data), busy.Elapsed)));
                    }
                    catch (FileOperationException ex) when (ex.Kind == FileErrorKind.NotSupported)
                    {
                        // No extent map there (tmpfs): one error for the filesystem, not one per file.
                        if (withoutExtentMaps.Add((c.Status.DevMajor, c.Status.DevMinor)))
                        {
                            skipped(new FileOperationException(
                                FileErrorKind.NotSupported,
                                ex.Errno,
                                ex.Operation,
                                c.Path,
                                $"Not searching the files on the filesystem of '{c.Path}': it has no extent maps (FIEMAP: {Errno.Name(ex.Errno)}), and a filesystem without them cannot share extents either (FIDEDUPERANGE), so nothing there can be deduplicated. Its other files are passed over without an error each. Search files on btrfs or xfs.",
                                ex));
                        }
                    }
                    catch (FileOperationException ex) when (ex.Operation != "sqlite")
                    {
                        skipped(ex);
                    }
                    finally
                    {
                        busy.Stop();
                    }

                    BytesRead = read;
                    dataDone += data;
                }

                report(Progress(read, files.Count, null, DataBytes, busy.Elapsed));
                return (index, busy.Elapsed);
            }
            catch
            {
                index.Dispose();
                throw;
            }
        }

        /// <summary>How far the scan is (the files and data taken so far are the totals while the walk goes on).</summary>
        private DuplicateScanProgress Progress(long read, int filesDone, string? current, long dataDone, TimeSpan busy)
        {
            lock (gate)
            {
                return new DuplicateScanProgress(read, DataBytes - BytesFromChecksums, filesDone, files.Count, current, dataDone, DataBytes, busy);
            }
        }

        /// <summary>Reads one file's data blocks (not those a shared extent maps that were read already) and hashes them; returns the bytes read.</summary>
        private long Scan(int fileNumber, Candidate c, SectorChecksums? sums, Dictionary<(int Class, BlockKey Key), UInt128> known, BlockIndex index, AlignedBuffer[] buffers, CancellationToken cancel, Action<long> progress)
        {
            using OpenFile file = OpenFile.OpenListed(c.Path, "Run the search again.");
            if (!file.Status.SameInode(c.Status))
            {
                // Another file under the listed name: the walk's own error for it (a hostile review: the id named a copy).
                throw new FileOperationException(FileErrorKind.ChangedSinceListed, 0, "statx", c.Path, $"Skipped '{c.Path}': it was removed or renamed after it was listed (its name leads to another file now). Run the search again.");
            }

            if (!file.Status.SameContentStamp(c.Status))
            {
                throw new FileOperationException(FileErrorKind.ChangedDuringCopy, 0, "statx", c.Path, $"Skipped '{c.Path}': it was written to (its size or times changed) since it was listed. Run the search again when it is quiet.");
            }

            // The last, partial block (the file's end is not on a block boundary) is one more block: it can only
            // equal another file's last block of the same length (its hash is seeded with its length), and a range
            // ending with it reaches both files' ends, which is where the kernel shares a partial block. Without
            // it, two identical files of 1 MiB + 100 bytes kept a 4 KiB piece of their extent each and freed nothing.
            long blockCount = (file.Size / BlockSize) + (file.Size % BlockSize == 0 ? 0 : 1);
            if (blockCount > int.MaxValue)
            {
                throw new FileOperationException(FileErrorKind.InvalidArgument, 0, "read", c.Path, $"Skipped '{c.Path}': its {file.Size} bytes are {blockCount} blocks of {BlockSize} bytes, more than a search can number ({int.MaxValue}). {((file.Size / MaxBlockSize) + 1 > int.MaxValue ? $"Even the largest -BlockSize ({MaxBlockSize}) leaves too many in a file this large: leave it out of the search (-Exclude)." : $"Use a larger -BlockSize (up to {MaxBlockSize}).")}");
            }

            int blocks = (int)blockCount;
            int tail = c.Tail; // bytes of the last block where it is partial, else 0

            // The extent map says where every block is: only whole blocks of plain data count. Only the blocks holding
            // data are held (numbered by dataBlocks, ascending; every array below is by their position there), so what
            // a file costs follows its data, not its apparent size: a 2 TiB thin image with 1 MiB written is 8 blocks
            // of 128 KiB, not 16 million (before: 2 GB of memory, and a 545 MiB hash file for two such images).
            var extents = ExtentMap.Read(file, new ExtentQuery { Sync = true }).Where(e => !e.IsHole).ToList();
            long dataBytes = extents.Sum(e => e.Length);
            if (dataBytes / BlockSize > Array.MaxLength / 2)
            {
                throw new FileOperationException(FileErrorKind.InvalidArgument, 0, "read", c.Path, $"Skipped '{c.Path}': its {dataBytes} bytes of data are more than {Array.MaxLength / 2} blocks of {BlockSize} bytes, more than one search can hold. Use a larger -BlockSize (up to {MaxBlockSize}).");
            }

            List<int> dataBlocks = DataBlocks(extents, blocks);
            int count = dataBlocks.Count;
            int[]? layout = count == blocks ? null : dataBlocks.ToArray();
            var hashes = new UInt128[count];
            var state = new byte[count]; // 0 none, 1 hashed, Zeros (2) zeros
            var where = new BlockKey[count];
            var shared = new bool[count];
            var toRead = new List<int>(); // positions in dataBlocks

            // Unchanged since its hashes were recorded: only the extent map is asked (where the blocks are now).
            HashFileKey key = HashFileKey.Of(c.FileSystemId, file.Status);
            bool cached = false;
            byte method = sums?.Method ?? 0;
            if (hashFile is not null && hashFile.TryGet(key, BlockSize, method, count, layout, out UInt128[] knownHashes, out byte[] knownState))
            {
                (hashes, state, cached) = (knownHashes, knownState, true);
            }

            int at = 0;
            bool readTail = false;
            for (int i = 0; i < count; i++)
            {
                int b = dataBlocks[i];
                long start = (long)b * BlockSize, end = Math.Min(start + BlockSize, file.Size);
                while (at < extents.Count && extents[at].EndOffset <= start)
                {
                    at++;
                }

                if (!CoveredByData(extents, at, start, end, out FileExtent? single))
                {
                    continue;
                }

                if (tail > 0 && b == blocks - 1)
                {
                    // The partial last block: always read (its hash is of another kind than a whole block's, so
                    // never taken from, nor given to, the blocks known by where they are on disk).
                    where[i] = BlockKey.Of(extents, at, start, end, single);
                    readTail = !cached;
                    continue;
                }

                // Where it is on disk names it (and tells a copy that shares it already): see BlockKey.Of.
                where[i] = BlockKey.Of(extents, at, start, end, single);
                if (single is not null)
                {
                    shared[i] = single.IsShared;
                    if (cached)
                    {
                        if (single.IsShared && where[i].IsSet && state[i] == 1 && known.Count < MemoryBlocks)
                        {
                            known.TryAdd((c.Class, where[i]), hashes[i]);
                        }

                        continue;
                    }

                    if (single.IsShared && where[i].IsSet && known.TryGetValue((c.Class, where[i]), out UInt128 h))
                    {
                        hashes[i] = h;
                        state[i] = 1;
                        continue; // the same bytes on disk were hashed already: not read again
                    }
                }

                if (!cached)
                {
                    toRead.Add(i);
                }
            }

            if (cached)
            {
                FilesFromHashFile++;
                Index(fileNumber, c, dataBlocks, hashes, state, where, index);
                return 0;
            }

            // On btrfs, as root: blocks whose sectors all have checksums need not be read at all.
            bool looked = toRead.Count > 0 || readTail;
            if (sums is not null && checksumTree && looked)
            {
                toRead = FromChecksumTree(file, c, sums, dataBlocks, toRead, extents, where, shared, hashes, state, known);
            }

            // Read the blocks to hash in runs of adjacent blocks, up to 4 MiB (or one block) per request; the next request
            // is read (on another thread, into the other buffer) while this one is hashed. Reading through short gaps
            // of blocks not to hash (up to 1 MiB) instead of ending the request there was no faster (xfs, a changed
            // 256 MiB image with 8 % of its blocks shared: reading and hashing 0.26-0.33 s either way, 3 runs each).
            var runs = new List<(int First, int Count)>();
            for (int i = 0; i < toRead.Count;)
            {
                int first = toRead[i], n = 1;
                while (i + n < toRead.Count && toRead[i + n] == first + n && dataBlocks[first + n] == dataBlocks[first] + n && (n + 1) * BlockSize <= RequestSize)
                {
                    n++;
                }

                runs.Add((first, n));
                i += n;
            }

            // Past the page cache (O_DIRECT) where the filesystem allows it: on this machine's loop devices
            // reading 2.3 GB took 0.55-1.19 s that way against 1.02-4.61 s through the cache with read-ahead
            // (5 runs each, caches dropped), and the cache is not filled with data read once (btrfs still
            // reads compressed extents through it). Where it is refused (procfs, FUSE filesystems without
            // it), or a read is (EINVAL: an alignment the device does not take), through the cache.
            long read = 0;
            bool direct = Files.TryReadDirect(file.Handle);
            if (!direct)
            {
                Files.AdviseSequentialRead(file.Handle, 0, file.Size);
            }

            int ReadAt(Span<byte> into, long offset)
            {
                if (direct)
                {
                    try
                    {
                        return Files.ReadFullyAt(file.Handle, into, offset, c.Path);
                    }
                    catch (FileOperationException ex) when (ex.Errno == Errno.EINVAL)
                    {
                        Files.ReadBuffered(file.Handle);
                        direct = false;
                    }
                }

                return Files.ReadFullyAt(file.Handle, into, offset, c.Path);
            }

            System.Threading.Tasks.Task<int>? next = null;
            System.Threading.Tasks.Task<int> ReadRun(int r) =>
                System.Threading.Tasks.Task.Run(() => ReadAt(buffers[r % 2].Span[..(runs[r].Count * BlockSize)], (long)dataBlocks[runs[r].First] * BlockSize));
            try
            {
                for (int r = 0; r < runs.Count; r++)
                {
                    cancel.ThrowIfCancellationRequested();
                    int got = (next ?? ReadRun(r)).GetAwaiter().GetResult();
                    next = r + 1 < runs.Count ? ReadRun(r + 1) : null;
                    (int first, int n) = runs[r];
                    Span<byte> span = buffers[r % 2].Span[..(n * BlockSize)];
                    for (int k = 0; k < n && (k + 1) * BlockSize <= got; k++)
                    {
                        int b = first + k;
                        ReadOnlySpan<byte> bytes = span.Slice(k * BlockSize, BlockSize);
                        if (!bytes.ContainsAnyExcept((byte)0))
                        {
                            state[b] = Zeros; // kept aside, not indexed (Index)
                            continue;
                        }

                        hashes[b] = sums is null ? XxHash128.HashToUInt128(bytes) : sums.FromData(bytes);
                        state[b] = 1;
                        if (shared[b] && where[b].IsSet && known.Count < MemoryBlocks)
                        {
                            known.TryAdd((c.Class, where[b]), hashes[b]);
                        }
                    }

                    read += got;
                    progress(read);
                }
            }
            finally
            {
                // Never leave a read running into a buffer (or on a descriptor) about to be reused or closed.
                try
                {
                    next?.Wait(CancellationToken.None);
                }
                catch (AggregateException)
                {
                    // The loop's own exception (or cancellation) is the one that matters.
                }
            }

            if (readTail)
            {
                // One aligned request of a whole block at the last block's start: the read stops at the end of the file.
                int b = count - 1; // the last block is the last data block
                Span<byte> span = buffers[0].Span[..BlockSize];
                int got = ReadAt(span, (long)dataBlocks[b] * BlockSize);
                if (got >= tail && span[..tail].ContainsAnyExcept((byte)0))
                {
                    hashes[b] = XxHash128.HashToUInt128(span[..tail], tail);
                    state[b] = 1;
                }
                else if (got >= tail)
                {
                    state[b] = Zeros;
                }

                read += got;
                progress(read);
            }

            if (!SameContent(file, c))
            {
                throw new FileOperationException(FileErrorKind.ChangedDuringCopy, 0, "read", c.Path, $"Skipped '{c.Path}': it was written while it was read. Run the search again when it is quiet.");
            }

            FilesRead += looked ? 1 : 0;
            if (!RacilyClean(file.Status))
            {
                hashFile?.Put(key, c.Path, BlockSize, method, layout, hashes, state);
            }

            Index(fileNumber, c, dataBlocks, hashes, state, where, index);
            return read;
        }

        /// <summary>
        /// The blocks of a file of <paramref name="blocks"/> blocks that extents of plain data reach (ascending), found
        /// from the extents, never by counting through the holes; whether each is all data is for the caller to check.
        /// </summary>
        private List<int> DataBlocks(List<FileExtent> extents, int blocks)
        {
            var found = new List<int>();
            long next = 0; // the first block not listed yet
            foreach (FileExtent e in extents)
            {
                if (e.IsHole || e.IsUnwritten || e.IsInline || e.IsDelalloc || e.Length <= 0)
                {
                    continue; // a block touching one is never all plain data
                }

                long first = Math.Max(next, e.LogicalOffset / BlockSize), last = Math.Min(blocks - 1L, (e.EndOffset - 1) / BlockSize);
                for (long b = first; b <= last; b++)
                {
                    found.Add((int)b);
                }

                next = Math.Max(next, last + 1);
            }

            return found;
        }

        private void Index(int fileNumber, Candidate c, List<int> dataBlocks, UInt128[] hashes, byte[] state, BlockKey[] where, BlockIndex index)
        {
            var zeros = new List<ZeroRun>();
            long last = c.Blocks(BlockSize) - 1;
            for (int i = 0; i < hashes.Length; i++)
            {
                if (state[i] == 1)
                {
                    index.Add(new IndexedBlock(c.Class, hashes[i], fileNumber, dataBlocks[i], where[i]));
                }
                else if (state[i] == Zeros && c.Tail > 0 && dataBlocks[i] == last)
                {
                    c.ZeroTail = where[i]; // a partial last block of zeros
                    c.HasZeroTail = true;
                }
                else if (state[i] == Zeros)
                {
                    // Runs of zeros at places that follow each other on disk are one entry: a file of written zeros costs
                    // a few entries, not one per block (they are never indexed: zeros alone start no range).
                    int b = dataBlocks[i];
                    if (zeros.Count > 0 && zeros[^1].Follows(b, where[i], BlockSize))
                    {
                        zeros[^1] = zeros[^1] with { Count = zeros[^1].Count + 1 };
                    }
                    else
                    {
                        zeros.Add(new ZeroRun(b, 1, where[i]));
                    }
                }
            }

            c.Zeros = zeros.Count > 0 ? zeros.ToArray() : null;
        }

        /// <summary>A block's state: zeros written as data (not a hole), kept aside as runs (<see cref="Candidate.Zeros"/>).</summary>
        private const byte Zeros = 2;

        /// <summary>
        /// Whether block <paramref name="block"/> of <paramref name="c"/> is zeros written as data: its length (the block
        /// size, or a partial last block's) and where it is on disk; 0 where it is not.
        /// </summary>
        private int ZerosAt(Candidate c, int block, out BlockKey where)
        {
            where = default;
            if (c.Tail > 0 && block == c.Blocks(BlockSize) - 1)
            {
                where = c.ZeroTail;
                return c.HasZeroTail ? c.Tail : 0;
            }

            ZeroRun[]? runs = c.Zeros;
            int lo = 0, hi = (runs?.Length ?? 0) - 1;
            while (lo <= hi)
            {
                int mid = (lo + hi) / 2;
                ZeroRun r = runs![mid];
                if (block < r.First)
                {
                    hi = mid - 1;
                }
                else if (block >= r.First + r.Count)
                {
                    lo = mid + 1;
                }
                else
                {
                    where = r.At(block - r.First, BlockSize);
                    return BlockSize;
                }
            }

            return 0;
        }

        /// <summary>Where block <paramref name="block"/> of file <paramref name="f"/> is on disk: a repeated block's, or zeros'; unset otherwise.</summary>
        private BlockKey WhereOf(int f, int block) =>
            files[f].Repeated is { } repeated && repeated.TryGetValue(block, out (int Group, BlockKey Where) r) ? r.Where
            : ZerosAt(files[f], block, out BlockKey where) > 0 ? where
            : default;

        /// <summary>
        /// Fingerprints, from btrfs's checksum tree, the blocks of <paramref name="toRead"/> (ascending positions in
        /// <paramref name="dataBlocks"/>, which gives their block numbers; the other arrays are by position) whose
        /// every sector lies in an uncompressed extent and has a checksum (<see cref="SectorChecksums"/>), and
        /// returns the blocks still to read. A block may span several extents (a 4 KiB write into a copied
        /// image makes one): each piece's checksums are found where it is on disk. The blocks are taken
        /// <see cref="ChecksumChunk"/> at a time (bounded memory), and pieces near each other on disk are asked
        /// for in one search. A checksum is only a candidate's fingerprint, as a hash of the bytes is: the
        /// kernel compares the bytes before it shares. Where the tree cannot be searched (no CAP_SYS_ADMIN),
        /// nothing is taken from it for the rest of the search: the blocks are read.
        /// </summary>
        private List<int> FromChecksumTree(OpenFile file, Candidate c, SectorChecksums sums, List<int> dataBlocks, List<int> toRead, List<FileExtent> extents, BlockKey[] where, bool[] shared, UInt128[] hashes, byte[] state, Dictionary<(int Class, BlockKey Key), UInt128> known)
        {
            int perBlock = BlockSize / sums.SectorSize, found = 0;
            var resolved = new bool[where.Length];
            var pieces = new List<(long Address, int Block, int Sector, int Count, long Logical)>();
            byte[] blockSums = new byte[Math.Min(ChecksumChunk, toRead.Count) * sums.BytesPerBlock];
            int[] filled = new int[ChecksumChunk];
            int at = 0;
            for (int first = 0; first < toRead.Count && checksumTree; first += ChecksumChunk)
            {
                int n = Math.Min(ChecksumChunk, toRead.Count - first);
                pieces.Clear();
                Array.Clear(filled, 0, n);
                for (int k = 0; k < n; k++)
                {
                    long start = (long)dataBlocks[toRead[first + k]] * BlockSize, end = start + BlockSize;
                    while (at < extents.Count && extents[at].EndOffset <= start)
                    {
                        at++;
                    }

                    int before = pieces.Count;
                    for (int i = at; i < extents.Count && extents[i].LogicalOffset < end; i++)
                    {
                        FileExtent e = extents[i];
                        long from = Math.Max(e.LogicalOffset, start), to = Math.Min(e.EndOffset, end), address = e.PhysicalOffset + (from - e.LogicalOffset);
                        if (e.IsCompressed || e.PhysicalOffset <= 0 || address % sums.SectorSize != 0 || (to - from) % sums.SectorSize != 0)
                        {
                            pieces.RemoveRange(before, pieces.Count - before); // read this block
                            break;
                        }

                        pieces.Add((address, k, (int)((from - start) / sums.SectorSize), (int)((to - from) / sums.SectorSize), from));
                    }
                }

                pieces.Sort((x, y) => x.Address.CompareTo(y.Address));
                for (int i = 0; i < pieces.Count;)
                {
                    long start = pieces[i].Address, end = start + ((long)pieces[i].Count * sums.SectorSize);
                    int j = i + 1;
                    while (j < pieces.Count && pieces[j].Address <= end + ChecksumGap && pieces[j].Address + ((long)pieces[j].Count * sums.SectorSize) - start <= ChecksumWindow)
                    {
                        end = Math.Max(end, pieces[j].Address + ((long)pieces[j].Count * sums.SectorSize));
                        j++;
                    }

                    int sectors = (int)((end - start) / sums.SectorSize);
                    byte[] window = new byte[sectors * sums.Size];
                    var have = new bool[sectors];
                    try
                    {
                        BtrfsSearch.DataChecksums(file, (ulong)start, (ulong)end, (ulong)sums.ItemReach, (itemStart, data) =>
                        {
                            long itemEnd = (long)itemStart + (data.Length / sums.Size * (long)sums.SectorSize);
                            long from = Math.Max((long)itemStart, start), to = Math.Min(itemEnd, end);
                            if (from >= to || ((long)itemStart % sums.SectorSize) != 0)
                            {
                                return;
                            }

                            int source = (int)((from - (long)itemStart) / sums.SectorSize), target = (int)((from - start) / sums.SectorSize), count = (int)((to - from) / sums.SectorSize);
                            data.Slice(source * sums.Size, count * sums.Size).CopyTo(window.AsSpan(target * sums.Size));
                            have.AsSpan(target, count).Fill(true);
                        });
                    }
                    catch (FileOperationException)
                    {
                        checksumTree = false; // not root (or no such tree): read, here and for the rest of the search
                        break;
                    }

                    for (int k = i; k < j; k++)
                    {
                        (long address, int block, int sector, int count, _) = pieces[k];
                        int offset = (int)((address - start) / sums.SectorSize);
                        if (!have.AsSpan(offset, count).Contains(false))
                        {
                            window.AsSpan(offset * sums.Size, count * sums.Size).CopyTo(blockSums.AsSpan((block * sums.BytesPerBlock) + (sector * sums.Size)));
                            filled[block] += count;
                        }
                    }

                    i = j;
                }

                // Where the blocks are was asked before their checksums: a deduplication or defragmentation by
                // someone else meanwhile moves extents without changing the file's times, and a freed extent's
                // place may hold other data by now. Unless the chunk's extents are where they were, it is read.
                if (checksumTree && pieces.Count > 0)
                {
                    long chunkStart = (long)dataBlocks[toRead[first]] * BlockSize, chunkEnd = ((long)dataBlocks[toRead[first + n - 1]] + 1) * BlockSize;
                    List<FileExtent> now = ExtentMap.Read(file, new ExtentQuery { Offset = chunkStart, Length = chunkEnd - chunkStart }).ToList();
                    foreach ((long address, int block, _, int count, long logical) in pieces)
                    {
                        if (!StillAt(now, logical, (long)count * sums.SectorSize, address))
                        {
                            filled[block] = int.MinValue; // moved: read the block
                        }
                    }
                }

                for (int k = 0; k < n && checksumTree; k++)
                {
                    if (filled[k] != perBlock)
                    {
                        continue; // a sector without a checksum, or in a compressed extent: read the block
                    }

                    int b = toRead[first + k];
                    resolved[b] = true;
                    found++;
                    UInt128 h = SectorChecksums.FromSums(blockSums.AsSpan(k * sums.BytesPerBlock, sums.BytesPerBlock));
                    if (h == sums.Zero)
                    {
                        state[b] = Zeros;
                        continue;
                    }

                    hashes[b] = h;
                    state[b] = 1;
                    if (shared[b] && where[b].IsSet && known.Count < MemoryBlocks)
                    {
                        known.TryAdd((c.Class, where[b]), h);
                    }
                }
            }

            BytesFromChecksums += (long)found * BlockSize;
            return found == 0 ? toRead : toRead.Where(b => !resolved[b]).ToList();
        }

        /// <summary>Whether [logical, +length) of the file is still in one uncompressed extent of <paramref name="extents"/>, at disk address <paramref name="address"/>.</summary>
        private static bool StillAt(List<FileExtent> extents, long logical, long length, long address)
        {
            foreach (FileExtent e in extents)
            {
                if (e.LogicalOffset <= logical && e.EndOffset >= logical + length)
                {
                    return !e.IsCompressed && !e.IsHole && !e.IsUnwritten && !e.IsDelalloc && e.PhysicalOffset + (logical - e.LogicalOffset) == address;
                }
            }

            return false;
        }

        /// <summary>
        /// Whether the file changed so shortly before it was read that a further change within the same tick of
        /// its filesystem's clock would leave its times as they are ("racily clean", as git says): its hashes
        /// are then not recorded (it is read again next time), or a hash file could hold the hashes of bytes
        /// that are gone. The tick: a second where the times have no fraction (ext4 with 128-byte inodes),
        /// else the coarse clock's (at most 10 ms; kernels from 6.13 give a changed file a fine time anyway).
        /// </summary>
        internal static bool RacilyClean(in FileStatus st, DateTimeOffset? now = null)
        {
            FileTime latest = st.ChangeTime.Seconds > st.ModifyTime.Seconds || (st.ChangeTime.Seconds == st.ModifyTime.Seconds && st.ChangeTime.Nanoseconds >= st.ModifyTime.Nanoseconds) ? st.ChangeTime : st.ModifyTime;
            TimeSpan tick = st.ModifyTime.Nanoseconds == 0 && st.ChangeTime.Nanoseconds == 0 ? TimeSpan.FromSeconds(2) : TimeSpan.FromMilliseconds(20);
            DateTimeOffset changed = DateTimeOffset.FromUnixTimeSeconds(latest.Seconds).AddTicks(latest.Nanoseconds / 100);
            return (now ?? DateTimeOffset.UtcNow) - changed < tick;
        }

        private static bool SameContent(OpenFile file, Candidate c) =>
            FileStatus.Of(file.Handle) is FileStatus now && now.SameContentStamp(c.Status);

        /// <summary>Whether [start, end) is all data (no hole, unwritten, inline or delayed part); <paramref name="single"/> is the extent when one holds it all.</summary>
        private static bool CoveredByData(List<FileExtent> extents, int at, long start, long end, out FileExtent? single)
        {
            single = null;
            long pos = start;
            for (int i = at; i < extents.Count && pos < end; i++)
            {
                FileExtent e = extents[i];
                if (e.LogicalOffset > pos || e.IsUnwritten || e.IsInline || e.IsDelalloc)
                {
                    return false;
                }

                if (e.LogicalOffset <= start && e.EndOffset >= end)
                {
                    single = e;
                }

                pos = e.EndOffset;
            }

            return pos >= end;
        }

        /// <summary>Gives every hash that occurs twice or more a group id (per such block in <see cref="Candidate.Repeated"/>); returns how many.</summary>
        private int NumberRepeatedHashes(BlockIndex index, CancellationToken cancel, out List<List<(int File, int Block)>> occurrences)
        {
            occurrences = new List<List<(int, int)>>();
            List<(int, int)>? list = null;
            IndexedBlock first = default;
            foreach (IndexedBlock b in index.Repeated())
            {
                if (list is null || b.Class != first.Class || b.Hash != first.Hash)
                {
                    cancel.ThrowIfCancellationRequested();
                    list = new List<(int, int)>();
                    occurrences.Add(list);
                    first = b;
                }

                Candidate c = files[b.File];
                c.Repeated ??= new Dictionary<int, (int, BlockKey)>();
                c.Repeated[b.Block] = (occurrences.Count - 1, b.Where);
                list.Add((b.File, b.Block));
            }

            return occurrences.Count;
        }

        /// <summary>
        /// How many blocks the run starting at <paramref name="copies"/> is: the next block of every copy
        /// belongs to one and the same group with exactly as many copies, or every copy's is zeros of the same
        /// length no run has taken (marked in <paramref name="claimed"/>), and ranges in one file do not overlap.
        /// Marks the groups used as consumed.
        /// </summary>
        private int RunLength(List<(int File, int Block)> copies, List<List<(int File, int Block)>> occurrences, bool[] consumed, ZeroClaims claimed)
        {
            int first = files[copies[0].File].Repeated![copies[0].Block].Group;
            consumed[first] = true;
            int run = 1;
            while (true)
            {
                int next = -1, zeros = 0;
                foreach ((int f, int b) in copies)
                {
                    if (files[f].Repeated!.TryGetValue(b + run, out (int Group, BlockKey) next2))
                    {
                        if (zeros > 0 || consumed[next2.Group] || (next >= 0 && next2.Group != next))
                        {
                            return run;
                        }

                        next = next2.Group;
                    }
                    else if (next < 0 && ZerosAt(files[f], b + run, out _) is int length and > 0 && (zeros == 0 || length == zeros) && !claimed.Contains(f, b + run))
                    {
                        zeros = length;
                    }
                    else
                    {
                        return run;
                    }
                }

                if (zeros > 0)
                {
                    // Zeros of the same length at the same place in every copy: part of the run.
                    if (Overlaps(copies, run + 1))
                    {
                        return run;
                    }

                    foreach ((int f, int b) in copies)
                    {
                        claimed.Add(f, b + run);
                    }

                    run++;
                    continue;
                }

                // The same group for all: it must hold exactly these copies shifted (same count), and the
                // longer ranges must not overlap within a file.
                if (occurrences[next].Count != copies.Count || Overlaps(copies, run + 1))
                {
                    return run;
                }

                consumed[next] = true;
                run++;
            }
        }

        /// <summary>
        /// How many blocks of zeros every copy of the run of <paramref name="run"/> blocks at <paramref name="copies"/> has
        /// right before it, at the same places, not taken by another run (marked in <paramref name="claimed"/>): the run
        /// starts there, so a copy's extent that begins with zeros is freed whole too.
        /// </summary>
        private int ZerosBefore(List<(int File, int Block)> copies, int run, ZeroClaims claimed)
        {
            int before = 0;
            while (true)
            {
                foreach ((int f, int b) in copies)
                {
                    int at = b - before - 1;
                    if (at < 0 || ZerosAt(files[f], at, out _) != BlockSize || claimed.Contains(f, at))
                    {
                        return before;
                    }
                }

                if (Overlaps(copies.ConvertAll(c => (c.File, c.Block - before - 1)), run + before + 1))
                {
                    return before;
                }

                foreach ((int f, int b) in copies)
                {
                    claimed.Add(f, b - before - 1);
                }

                before++;
            }
        }

        /// <summary>
        /// Groups of the zeros that some of the copies of a run (not all: then the run took them) have right after it, or
        /// right before it, at the same places: a third file sharing only the data beside them kept the run from taking
        /// them, and the copies' extents stayed whole (a hostile test: two identical files with zeros written in them,
        /// and a third holding their data with zeros elsewhere, freed nothing). Each group is the copies that have such
        /// zeros, as far as all of them do.
        /// </summary>
        private IEnumerable<BtrfsDuplicateGroup> ZerosBeside(List<(int File, int Block)> copies, int run, ZeroClaims claimed)
        {
            foreach (int side in new[] { 1, -1 })
            {
                var with = new List<(int File, int Block)>(); // the first block of zeros beside the run, per copy that has one
                int first = 0;
                foreach ((int f, int b) in copies)
                {
                    int at = side > 0 ? b + run : b - 1;
                    int length = at >= 0 ? ZerosAt(files[f], at, out _) : 0;
                    if (length > 0 && !claimed.Contains(f, at) && (first == 0 || length == first))
                    {
                        with.Add((f, at));
                        first = length;
                    }
                }

                if (with.Count < 2)
                {
                    continue;
                }

                int n = 0;
                bool ended = false;
                while (!ended)
                {
                    int length = 0;
                    foreach ((int f, int at0) in with)
                    {
                        int at = at0 + (side * n);
                        int here = at >= 0 ? ZerosAt(files[f], at, out _) : 0;
                        if (here == 0 || claimed.Contains(f, at) || (length != 0 && here != length))
                        {
                            length = -1;
                            break;
                        }

                        length = here;
                    }

                    if (length <= 0)
                    {
                        break;
                    }

                    n++;
                    ended = length != BlockSize; // a partial last block: the end
                }

                List<(int File, int Block)> starts = (side > 0 ? with : with.ConvertAll(c => (c.File, Block: c.Block - n + 1)))
                    .OrderBy(c => c.File).ThenBy(c => c.Block).ToList();
                if (n == 0 || Overlaps(starts, n))
                {
                    continue;
                }

                foreach ((int f, int b) in starts)
                {
                    for (int k = 0; k < n; k++)
                    {
                        claimed.Add(f, b + k);
                    }
                }

                if (Group(starts, n) is BtrfsDuplicateGroup zeros)
                {
                    yield return zeros;
                }
            }
        }

        private static bool Overlaps(List<(int File, int Block)> copies, int run)
        {
            for (int i = 1; i < copies.Count; i++)
            {
                if (copies[i].File == copies[i - 1].File && copies[i].Block - copies[i - 1].Block < run)
                {
                    return true;
                }
            }

            return false;
        }

        private BtrfsDuplicateGroup? Group(List<(int File, int Block)> copies, int run)
        {
            copies = KeeperFirst(copies, run);
            (int kf, int kb) = copies[0];

            // A run that ends with the keeper's partial last block ends with every copy's (equal hashes: of the same length).
            int last = files[kf].Tail > 0 && kb + run - 1 == files[kf].Blocks(BlockSize) - 1 ? files[kf].Tail : BlockSize;
            long length = ((long)(run - 1) * BlockSize) + last;
            long alreadyShared = 0;
            var ranges = new List<DuplicateRange>(copies.Count);
            foreach ((int f, int b) in copies)
            {
                bool keeper = f == kf && b == kb;
                long sharing = 0;
                for (int k = 0; !keeper && k < run; k++)
                {
                    BlockKey here = WhereOf(f, b + k), there = WhereOf(kf, kb + k);
                    sharing += here.IsSet && here.Place == there.Place ? (k == run - 1 ? last : BlockSize) : 0;
                }

                // A range that shares the keeper's extents already: nothing to do there, and deduplicating it frees nothing.
                ranges.Add(new DuplicateRange { Path = files[f].Path, Offset = (long)b * BlockSize, Length = length, Inode = files[f].Status.Inode, Device = files[f].Status.Device, Generation = files[f].Generation, FreesNothing = !keeper && sharing == length, SharedWithKeeperBytes = sharing });
                alreadyShared += sharing;
            }

            if (alreadyShared == length * (copies.Count - 1))
            {
                return null; // everything shares the keeper's extents already: nothing to do
            }

            return new BtrfsDuplicateGroup
            {
                Ranges = ranges.ToArray(),
                Length = length,
                AlreadySharedBytes = alreadyShared,
            };
        }

        /// <summary>
        /// The copies with the keeper first. On xfs (freed block by block): the copy with the most blocks of the run shared
        /// with a file outside the group (they stay whatever is shared), else the first of those whose first block is where
        /// the most other copies have theirs (a reflink copy and its source, both found), or the first found when none
        /// shares. Kept so, the copies that already share its blocks need nothing and the rest free the same space
        /// (before: the first found was kept even when it alone was unshared, so, as xfs counts shared blocks as freeing
        /// nothing, the group was said to free 0 B and its run to have freed 0 B while it freed the whole copy; a hostile
        /// review).
        /// On btrfs the first found, for <see cref="ReclaimLedger.WithKeepersThatStay"/> to judge: an extent there goes
        /// only with its last byte, so keeping a shared copy can free less (an unshared first copy whose extent its file
        /// also uses elsewhere stays anyway, and deduplicating it would free nothing).
        /// </summary>
        private List<(int File, int Block)> KeeperFirst(List<(int File, int Block)> copies, int run)
        {
            if (!files[copies[0].File].BlockByBlock)
            {
                return copies;
            }

            // A copy whose blocks are shared with a file no other copy is (a reflink backup outside the search): they stay
            // whatever is shared, so keeping it frees every other copy (a review: a reflinked pair in the group was kept over
            // it, and nothing was freed). Judged over every block of the run, each copy by how many of its blocks are so: the
            // one with the most is kept (the first of equals), never on its first block alone (a review: a copy shared there
            // only was kept over one shared in all the rest).
            int keeper = -1, best = 0;
            var score = new int[copies.Count];
            var places = new Dictionary<BlockKey, int>();
            for (int k = 0; k < run; k++)
            {
                places.Clear();
                foreach ((int f, int b) in copies)
                {
                    BlockKey where = WhereOf(f, b + k);
                    if (where.IsSet)
                    {
                        places[where.Place] = places.GetValueOrDefault(where.Place) + 1;
                    }
                }

                for (int i = 0; i < copies.Count; i++)
                {
                    BlockKey where = WhereOf(copies[i].File, copies[i].Block + k);
                    score[i] += where.IsShared && places[where.Place] == 1 ? 1 : 0;
                }
            }

            for (int i = 0; i < copies.Count; i++)
            {
                if (score[i] > best)
                {
                    (keeper, best) = (i, score[i]);
                }
            }

            // Else the copy most others share their first block with (a reflink copy and its source, both found).
            var sharing = new Dictionary<BlockKey, int>();
            foreach ((int f, int b) in copies)
            {
                BlockKey where = WhereOf(f, b);
                if (where.IsSet)
                {
                    sharing[where.Place] = sharing.GetValueOrDefault(where.Place) + 1;
                }
            }

            int most = 1;
            for (int i = 0; i < copies.Count && keeper < 0; i++)
            {
                BlockKey where = WhereOf(copies[i].File, copies[i].Block);
                if (where.IsSet && sharing[where.Place] > most)
                {
                    most = sharing[where.Place];
                }
            }

            for (int i = 0; i < copies.Count && keeper < 0 && most > 1; i++)
            {
                BlockKey where = WhereOf(copies[i].File, copies[i].Block);
                keeper = where.IsSet && sharing[where.Place] == most ? i : -1;
            }

            keeper = Math.Max(keeper, 0);

            if (keeper == 0)
            {
                return copies;
            }

            var ordered = new List<(int File, int Block)>(copies.Count) { copies[keeper] };
            for (int i = 0; i < copies.Count; i++)
            {
                if (i != keeper)
                {
                    ordered.Add(copies[i]);
                }
            }

            return ordered;
        }

        /// <summary>
        /// The blocks of zeros runs have taken, per file as ranges of blocks (a run takes them one after another, forward
        /// or back): what they cost follows the runs, not the zeros (two copies of a large image of written zeros are one
        /// range each).
        /// </summary>
        private sealed class ZeroClaims
        {
            private readonly Dictionary<int, SortedList<int, int>> byFile = new(); // start -> end (exclusive)

            internal bool Contains(int file, int block) =>
                byFile.TryGetValue(file, out SortedList<int, int>? ranges) && Floor(ranges, block) is int i && block < ranges.Values[i];

            internal void Add(int file, int block)
            {
                if (!byFile.TryGetValue(file, out SortedList<int, int>? ranges))
                {
                    byFile[file] = ranges = new SortedList<int, int>();
                }

                if (Floor(ranges, block) is int i && ranges.Values[i] >= block)
                {
                    int end = Math.Max(ranges.Values[i], block + 1);
                    if (ranges.TryGetValue(end, out int next))
                    {
                        ranges.Remove(end); // joined to the one after it
                        end = next;
                    }

                    ranges[ranges.Keys[i]] = end;
                }
                else if (ranges.TryGetValue(block + 1, out int end))
                {
                    ranges.Remove(block + 1); // the one after it begins here now
                    ranges[block] = end;
                }
                else
                {
                    ranges[block] = block + 1;
                }
            }

            /// <summary>The index of the last range starting at or before <paramref name="block"/>; null when none does.</summary>
            private static int? Floor(SortedList<int, int> ranges, int block)
            {
                int lo = 0, hi = ranges.Count - 1, found = -1;
                while (lo <= hi)
                {
                    int mid = (lo + hi) / 2;
                    if (ranges.Keys[mid] <= block)
                    {
                        (found, lo) = (mid, mid + 1);
                    }
                    else
                    {
                        hi = mid - 1;
                    }
                }

                return found < 0 ? null : found;
            }
        }

        /// <summary>A file taken, and what its scan found.</summary>
        private sealed class Candidate(string path, FileStatus status, int cls, ulong fileSystemId)
        {
            /// <summary>statfs f_fsid of the file's filesystem (0 without a hash file).</summary>
            internal ulong FileSystemId { get; } = fileSystemId;

            internal string Path { get; } = path;

            internal FileStatus Status { get; } = status;

            /// <summary>The filesystem (and on btrfs the NOCOW class) the file is in: blocks are compared within one.</summary>
            internal int Class { get; } = cls;

            /// <summary>The file's blocks whose hash occurs twice or more: their group id and where they are on disk.</summary>
            internal Dictionary<int, (int Group, BlockKey Where)>? Repeated { get; set; }

            /// <summary>Bytes of the last block where it is partial (the size is not a multiple of the block size), else 0.</summary>
            internal int Tail { get; init; }

            /// <summary>The file's whole blocks of zeros written as data, as runs in block order (null: none).</summary>
            internal ZeroRun[]? Zeros { get; set; }

            /// <summary>Whether the partial last block is zeros written as data; where it is (<see cref="ZeroTail"/>).</summary>
            internal bool HasZeroTail { get; set; }

            internal BlockKey ZeroTail { get; set; }

            /// <summary>The inode's generation (0 where the filesystem does not say).</summary>
            internal uint Generation { get; init; }

            /// <summary>The filesystem frees a shared extent block by block (xfs), not whole when its last byte goes (btrfs).</summary>
            internal bool BlockByBlock { get; init; }

            /// <summary>The file's blocks, a partial last one included.</summary>
            internal long Blocks(int blockSize) => (Status.Size / blockSize) + (Tail > 0 ? 1 : 0);
        }
    }

    /// <summary>
    /// Blocks of zeros that follow each other in a file, <see cref="Count"/> from <see cref="First"/>, each where the one
    /// before it ends on disk (one extent holds them), or all unknown (a compressed extent); the first's key <see cref="Where"/>.
    /// </summary>
    internal readonly record struct ZeroRun(int First, int Count, BlockKey Where)
    {
        /// <summary>Whether block <paramref name="block"/> at <paramref name="where"/> continues the run.</summary>
        internal bool Follows(int block, BlockKey where, int blockSize) =>
            block == First + Count
            && (Where.IsSet
                ? Where.Offset is -1 or BlockKey.SharedSingle && where.Offset == Where.Offset && where.Address == Where.Address + ((long)Count * blockSize)
                : !where.IsSet);

        /// <summary>The key of the run's block <paramref name="k"/>.</summary>
        internal BlockKey At(int k, int blockSize) => Where.IsSet && k > 0 ? Where with { Address = Where.Address + ((long)k * blockSize) } : Where;
    }

    /// <summary>
    /// Where a block is on disk: its address (Offset -1, or -2 where that extent is shared) where one extent holds it whole; where it lies across several,
    /// the address of its first piece and (Offset, never -1) a 63-bit hash of where each piece is and how long; unset
    /// (default) where that cannot be known (a compressed extent).
    /// </summary>
    internal readonly record struct BlockKey(long Address, long Offset)
    {
        /// <summary>The Offset of a block one extent holds whole that FIEMAP says is shared (with a copy or any other file): -2.</summary>
        internal const long SharedSingle = -2;

        internal bool IsSet => Address != 0 || Offset != 0;

        /// <summary>One extent holds the block whole and FIEMAP said it is shared.</summary>
        internal bool IsShared => Offset == SharedSingle;

        /// <summary>
        /// Where the block is, without the shared flag: what two files compare to know they use the same block (FIEMAP may
        /// say one is shared and not the other: a reflink made between their two looks, or older kernels' merged extent
        /// maps; a review).
        /// </summary>
        internal BlockKey Place => Offset == SharedSingle ? new BlockKey(Address, -1) : this;

        /// <summary>
        /// The key of the block [<paramref name="start"/>, <paramref name="end"/>), covered by data (<paramref name="single"/>:
        /// the one extent that holds it whole, if any) in <paramref name="extents"/> from index <paramref name="at"/> on.
        /// A compressed extent has no address per block: FIEMAP gives its start on disk for every reference, whichever
        /// part of it the file uses (two files using its two halves look the same), so its blocks are named by nothing.
        /// A block across several extents is named by all its pieces: a copy that shares every piece shares the block
        /// (before: such a block never counted as shared, so a reflink copy of a fragmented file was reported as a
        /// duplicate, again after every deduplication. A hostile test). Only ever compared, never taken to know a hash.
        /// </summary>
        internal static BlockKey Of(List<FileExtent> extents, int at, long start, long end, FileExtent? single)
        {
            if (single is not null)
            {
                return single.IsCompressed ? default : new BlockKey(single.PhysicalOffset + (start - single.LogicalOffset), single.IsShared ? SharedSingle : -1);
            }

            byte[] piece = new byte[16];
            ulong hash = 0;
            long first = 0;
            for (int i = at; i < extents.Count && extents[i].LogicalOffset < end; i++)
            {
                FileExtent e = extents[i];
                if (e.EndOffset <= start)
                {
                    continue;
                }

                if (e.IsCompressed)
                {
                    return default;
                }

                long from = Math.Max(start, e.LogicalOffset), where = e.PhysicalOffset + (from - e.LogicalOffset);
                System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(piece, where);
                System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(piece.AsSpan(8), Math.Min(end, e.EndOffset) - from);
                first = first == 0 ? where : first;
                hash = XxHash64.HashToUInt64(piece, (long)hash); // chained: each piece's hash seeds the next
            }

            long mixed = (long)(hash & long.MaxValue);
            return first == 0 ? default : new BlockKey(first, mixed);
        }
    }
}
