namespace Btrfs.Commands
{
    using System;
    using System.Collections.Generic;
    using System.IO;
    using System.Management.Automation;
    using Btrfs.Core;

    /// <summary>New-BtrfsReflink: instant copies that share extents, made so they succeed where they can and explained where they cannot.</summary>
    [Cmdlet(VerbsCommon.New, "BtrfsReflink", DefaultParameterSetName = PathSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
    [OutputType(typeof(ReflinkResult))]
    public sealed class NewBtrfsReflinkCommand : FileCmdletBase, IDisposable
    {
        private ProgressBars? bars;
        private long totalBytes;
        private long doneBytes;
        private bool mirroring;
        private readonly ReflinkSession session = new();

        /// <summary>The new file, or an existing directory to copy into.</summary>
        [Parameter(Mandatory = true, Position = 1)]
        [ValidateNotNullOrEmpty]
        public string Destination { get; set; } = string.Empty;

        /// <summary>Replace an existing destination (or write a range into it); never one in use.</summary>
        [Parameter]
        public SwitchParameter Force { get; set; }

        /// <summary>With -Force: where no write lease can prove that nobody has the destination open, rely on the /proc scan alone.</summary>
        [Parameter]
        public SwitchParameter AssumeNotInUse { get; set; }

        /// <summary>What to do when a reflink is impossible: None (an error) or Copy (copy the data, like cp --reflink=auto).</summary>
        [Parameter]
        public ReflinkFallback Fallback { get; set; } = ReflinkFallback.None;

        /// <summary>First byte of the source range to clone (FICLONERANGE).</summary>
        [Parameter]
        [ValidateRange(0, long.MaxValue)]
        public long SourceOffset { get; set; }

        /// <summary>Bytes of the range; default to the source's end.</summary>
        [Parameter]
        [ValidateRange(1, long.MaxValue)]
        public long Length { get; set; }

        /// <summary>Where the range goes in the destination; default the source offset.</summary>
        [Parameter]
        [ValidateRange(0, long.MaxValue)]
        public long DestinationOffset { get; set; }

        /// <summary>For a directory source: mirror the tree.</summary>
        [Parameter]
        public SwitchParameter Recurse { get; set; }

        /// <summary>With -Recurse: also enter other filesystems and btrfs subvolumes.</summary>
        [Parameter]
        public SwitchParameter CrossFileSystem { get; set; }

        /// <summary>Keep mode, owner, group and timestamps (like cp -p).</summary>
        [Parameter]
        public SwitchParameter Preserve { get; set; }

        private ReflinkOptions Options { get; set; } = new();

        private string DestinationPath { get; set; } = string.Empty;

        /// <inheritdoc/>
        protected override void BeginProcessing()
        {
            Options = new ReflinkOptions
            {
                Force = Force.IsPresent,
                AssumeNotInUse = AssumeNotInUse.IsPresent,
                Fallback = Fallback,
                SourceOffset = Bound(nameof(SourceOffset)) ? SourceOffset : null,
                Length = Bound(nameof(Length)) ? Length : null,
                DestinationOffset = Bound(nameof(DestinationOffset)) ? DestinationOffset : null,
                Preserve = Preserve.IsPresent,
            };
            if (Options.IsRange && Recurse.IsPresent)
            {
                ThrowTerminatingError(ErrorRecords.ConflictingParameters("RangeWithRecurse", "-SourceOffset, -Length and -DestinationOffset clone a range of one file; they cannot be combined with -Recurse."));
            }

            DestinationPath = SessionState.Path.GetUnresolvedProviderPathFromPSPath(Destination);
            bars = new ProgressBars(this, "New-BtrfsReflink", 0x5246);
        }

        /// <inheritdoc/>
        protected override void EndProcessing()
        {
            bars?.Complete();
            foreach (string dir in session.WrittenDirectories)
            {
                ReflinkCopy.Flush(dir); // one syncfs per destination filesystem, not one fsync per file
            }
        }

        /// <summary>Closes the directories the session kept open, also when the pipeline was stopped.</summary>
        public void Dispose() => session.Dispose();

        /// <inheritdoc/>
        protected override void ProcessFile(string path)
        {
            bool isDirectory = FileStatus.OfPath(path, followLinks: true) is { IsDirectory: true };
            if (!isDirectory)
            {
                string target = Directory.Exists(DestinationPath) ? System.IO.Path.Combine(DestinationPath, System.IO.Path.GetFileName(path.TrimEnd('/'))) : DestinationPath;
                CopyOne(path, target);
                return;
            }

            ThrowIfDirectoryWithoutRecurse(path, Recurse.IsPresent, "clone", "mirror the tree (directories created, files cloned, symbolic links recreated)");
            Mirror(path);
        }

        private bool Bound(string name) => MyInvocation.BoundParameters.ContainsKey(name);

        private void CopyOne(string source, string destination, bool fromWalk = false)
        {
            using ReflinkCopy copy = ReflinkCopy.Prepare(source, destination, Options, session, fromWalk);
            foreach (string w in copy.Warnings)
            {
                WriteWarning(w);
            }

            string what = copy.Method == ReflinkMethod.Reflink
                ? $"Clone '{source}' ({SizeFormatter.Format(copy.Length)}, {copy.ExtentCount} extents, no data copied)"
                : $"Copy the data of '{source}' ({SizeFormatter.Format(copy.Length)})";
            if (copy.DestinationExists)
            {
                what += Options.IsRange ? " into this existing file" : ", replacing this file";
            }

            if (!ShouldProcess(copy.Destination, what))
            {
                return;
            }

            ReflinkResult result = copy.Run(StopToken);
            if (mirroring)
            {
                doneBytes += result.Length;
                bars!.Report(doneBytes);
            }

            WriteObject(result);
        }

        private void Mirror(string sourceRoot)
        {
            string root = sourceRoot.Length > 1 ? sourceRoot.TrimEnd('/') : sourceRoot;
            string destRoot = Directory.Exists(DestinationPath) ? System.IO.Path.Combine(DestinationPath, System.IO.Path.GetFileName(root)) : DestinationPath;

            // Bytes first (a listing and a stat per file, nothing opened), so progress has a percentage.
            totalBytes = 0;
            foreach (WalkEntry e in TreeWalker.Walk(root, CrossFileSystem.IsPresent))
            {
                if (e.Kind == WalkEntryKind.File && FileStatus.OfPath(e.Path, followLinks: false) is FileStatus st)
                {
                    totalBytes += st.Size;
                }
            }

            doneBytes = 0;
            bars!.StartFile(root, totalBytes);
            mirroring = true;
            var directories = new List<(string Source, string Target)>();
            try
            {
                foreach (WalkEntry entry in TreeWalker.Walk(root, CrossFileSystem.IsPresent))
                {
                    StopToken.ThrowIfCancellationRequested();
                    string target = destRoot + entry.Path[root.Length..];
                    try
                    {
                        switch (entry.Kind)
                        {
                            case WalkEntryKind.Directory:
                                MakeDirectory(entry.Path, target, directories);
                                break;
                            case WalkEntryKind.File:
                                CopyOne(entry.Path, target, fromWalk: true);
                                break;
                            case WalkEntryKind.SymbolicLink:
                                CopyLink(entry.Path, target);
                                break;
                            case WalkEntryKind.Error:
                                WriteError(ErrorRecords.From(entry.Error!));
                                break;
                            case WalkEntryKind.OtherFileSystem:
                                WriteVerbose($"Not descending into '{entry.Path}': it is another filesystem or btrfs subvolume (use -CrossFileSystem to include it).");
                                break;
                            default:
                                WriteWarning($"Skipping '{entry.Path}': it is not a regular file, directory or symbolic link (FIFOs, sockets and devices are not copied).");
                                break;
                        }
                    }
                    catch (FileOperationException ex)
                    {
                        WriteError(ErrorRecords.From(ex));
                    }
                }

                if (Preserve.IsPresent)
                {
                    // Directories last, deepest first: creating their contents moved their times.
                    for (int i = directories.Count - 1; i >= 0; i--)
                    {
                        TreeCopy.PreserveDirectory(directories[i].Source, directories[i].Target);
                    }
                }
            }
            finally
            {
                mirroring = false;
                bars.EndFile();
            }
        }

        private void MakeDirectory(string source, string target, List<(string, string)> directories)
        {
            if (File.Exists(target) || (FileStatus.OfPath(target, followLinks: false) is { IsDirectory: false }))
            {
                throw new FileOperationException(FileErrorKind.AlreadyExists, Interop.Libc.EEXIST, "mkdir", target, $"Cannot create the directory '{target}': a file of that name exists. It was left as it is, and the files below '{source}' were not copied.");
            }

            if (!ShouldProcess(target, $"Create the directory (mirror of '{source}')"))
            {
                return;
            }

            if (TreeCopy.MakeDirectoryLike(source, target))
            {
                session.CreatedDirectory(target);
            }
            if (Preserve.IsPresent)
            {
                directories.Add((source, target));
            }
        }

        private void CopyLink(string source, string target)
        {
            if (FileStatus.OfPath(target, followLinks: false) is not null && !Force.IsPresent)
            {
                throw new FileOperationException(FileErrorKind.AlreadyExists, Interop.Libc.EEXIST, "symlink", target, $"Cannot create the symbolic link '{target}': it exists, and an existing destination is never replaced without -Force. It was left as it is.");
            }

            if (ShouldProcess(target, $"Create a symbolic link like '{source}'"))
            {
                TreeCopy.CopySymbolicLink(source, target, Force.IsPresent, Preserve.IsPresent);
            }
        }
    }
}
