namespace Btrfs.Commands
{
    using System;
    using System.Collections.Generic;
    using System.Linq;
    using System.Management.Automation;
    using Btrfs.Core;
    using Btrfs.Kernel;

    /// <summary>Invoke-BtrfsDedupe: makes ranges that hold the same bytes share extents, the kernel comparing them.</summary>
    [Cmdlet(VerbsLifecycle.Invoke, "BtrfsDedupe", DefaultParameterSetName = LiteralPathSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium, HelpUri = HelpLinks.Pages + "Invoke-BtrfsDedupe.md")]
    [OutputType(typeof(DedupeResult), ParameterSetName = new[] { PathSet, LiteralPathSet })]
    [OutputType(typeof(DedupeGroupResult), ParameterSetName = new[] { GroupSet })]
    public sealed class InvokeBtrfsDedupeCommand : FileCmdletBase
    {
        private const string GroupSet = "Group";
        private ProgressBars? bars;
        private long groupsFreeable;
        private int groupsGiven;
        private bool warnedUnchecked;
        private readonly FreeSpaceMeter meter = new(); // the free space carried from one group to the next

        /// <summary>The files whose ranges should share the source's extents.</summary>
        [Parameter(Mandatory = true, Position = 1, ParameterSetName = PathSet)]
        [Parameter(Mandatory = true, Position = 1, ParameterSetName = LiteralPathSet)]
        [ValidateNotNullOrEmpty]
        [SupportsWildcards]
        [NotAScriptBlock("Give the destination paths themselves.")]
        [PipedPath]
        public string[] Destination { get; set; } = Array.Empty<string>();

        /// <summary>Groups of ranges holding the same bytes, from Find-BtrfsDuplicate: every range shares the first one's extents.</summary>
        [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = GroupSet)]
        [ValidateNotNull]
        public BtrfsDuplicateGroup[] InputObject { get; set; } = Array.Empty<BtrfsDuplicateGroup>();

        /// <summary>
        /// With groups: also share the ranges that would free no disk space (marked FreesNothing by
        /// Find-BtrfsDuplicate), which are otherwise left as they are: sharing them only splits extents.
        /// </summary>
        [Parameter(ParameterSetName = GroupSet)]
        public SwitchParameter IncludeUnreclaimable { get; set; }

        /// <summary>First byte of the source range.</summary>
        [Parameter(ParameterSetName = PathSet)]
        [Parameter(ParameterSetName = LiteralPathSet)]
        [Alias("SourceOffset")] // New-BtrfsReflink's name for it
        [ValidateRange(0, long.MaxValue)]
        public long Offset { get; set; }

        /// <summary>Bytes of the range; default to the end.</summary>
        [Parameter(ParameterSetName = PathSet)]
        [Parameter(ParameterSetName = LiteralPathSet)]
        [ValidateRange(1, long.MaxValue)]
        public long Length { get; set; }

        /// <summary>Where the range is in each destination; default the source offset.</summary>
        [Parameter(ParameterSetName = PathSet)]
        [Parameter(ParameterSetName = LiteralPathSet)]
        [ValidateRange(0, long.MaxValue)]
        public long DestinationOffset { get; set; }

        /// <inheritdoc/>
        protected override void ProcessRecord()
        {
            if (ParameterSetName != GroupSet)
            {
                base.ProcessRecord();
                return;
            }

            foreach (BtrfsDuplicateGroup group in InputObject)
            {
                if (StopToken.IsCancellationRequested)
                {
                    return;
                }

                if (Resolved(group) is not BtrfsDuplicateGroup resolved)
                {
                    continue;
                }

                int skipped = IncludeUnreclaimable ? 0 : GroupDeduplicator.Skipped(resolved);
                int sharing = resolved.Ranges.Length - 1 - skipped;
                int sharingKeeper = IncludeUnreclaimable ? 0 : GroupDeduplicator.SharingKeeper(resolved);
                string left = (sharingKeeper == 0 ? string.Empty : string.Format(
                    System.Globalization.CultureInfo.InvariantCulture,
                    "; {0} range(s) already share its extents: nothing to do there",
                    sharingKeeper))
                    + (skipped - sharingKeeper == 0 ? string.Empty : string.Format(
                    System.Globalization.CultureInfo.InvariantCulture,
                    "; {0} range(s) left as they are: sharing them would free no disk space, only split extents (-IncludeUnreclaimable shares them)",
                    skipped - sharingKeeper));
                groupsGiven++;
                if (sharing == 0)
                {
                    string leftAlone = $"Left the group of {SizeFormatter.Format(resolved.Length)} at offset {resolved.Ranges[0].Offset:N0} of '{resolved.Path}' as it is{left}.";
                    if (WhatIfInEffect)
                    {
                        // Said beside the "What if:" lines, as the total is (before: a preview of groups that all free
                        // nothing said nothing at all, where the run reports each as NothingToFree; a hostile test).
                        WriteInformation("What if: " + leftAlone, new[] { "PSHOST" });
                    }
                    else
                    {
                        WriteVerbose(leftAlone);
                        WriteObject(GroupDeduplicator.Run(resolved, false, (_, _) => { }, StopToken));
                    }

                    continue;
                }

                bool running = false;
                try
                {
                    // A preview says what the run would refuse (the refusals as the run's errors) and leaves it out of
                    // the figures (a hostile review: as nobody, "about 12.0 MiB would be freed", and the run freed 4 MiB
                    // with two AccessDenied; an immutable copy counted too).
                    long freeable = resolved.ReclaimableBytes;
                    if (WhatIfInEffect)
                    {
                        var refused = GroupDeduplicator.Refused(resolved, IncludeUnreclaimable);
                        foreach ((_, FileOperationException why) in refused)
                        {
                            WriteError(ErrorRecords.From(why));
                        }

                        if (refused.Count > 0)
                        {
                            // The group's reclaimable bytes are those of its ranges that free something (not FreesNothing,
                            // which -IncludeUnreclaimable shares too, for nothing): shared out among those (a review: a
                            // FreesNothing range refused took a share, one that frees something refused left its share).
                            int freeing = resolved.Ranges.Skip(1).Count(r => !r.FreesNothing);
                            int refusedFreeing = refused.Count(x => !x.Range.FreesNothing);
                            freeable = freeing == 0 ? 0 : resolved.ReclaimableBytes * (freeing - refusedFreeing) / freeing;
                            sharing -= refused.Count;
                            left += string.Format(System.Globalization.CultureInfo.InvariantCulture, "; {0} range(s) would be refused (the errors say why) and are not counted", refused.Count);
                        }

                        if (sharing <= 0)
                        {
                            continue;
                        }
                    }

                    string action = string.Format(
                        System.Globalization.CultureInfo.InvariantCulture,
                        "Share the extents of {0} at offset {1:N0} with {2} other range(s) holding the same bytes (the kernel compares them first): {3} to deduplicate, about {4} of disk space to free{5}",
                        SizeFormatter.Format(resolved.Length),
                        resolved.Ranges[0].Offset,
                        sharing,
                        SizeFormatter.Format(Math.Min(resolved.DuplicateBytes, resolved.Length * sharing)),
                        SizeFormatter.Format(freeable),
                        left);
                    groupsFreeable += freeable;

                    if (!Preferences.ShouldProcess(this, resolved.Path, action))
                    {
                        continue;
                    }

                    running = true;
                    DedupeGroupResult result = GroupDeduplicator.Run(
                        resolved,
                        IncludeUnreclaimable,
                        (pair, failure) =>
                        {
                            if (failure is not null)
                            {
                                WriteError(ErrorRecords.From(failure));
                            }
                            else if (pair.Status == DedupeStatus.Error)
                            {
                                WriteError(ErrorRecords.From(pair.Error ?? new FileOperationException(FileErrorKind.IOError, 0, "FIDEDUPERANGE", pair.Destination, pair.ErrorMessage ?? "Cannot deduplicate.")));
                            }
                        },
                        StopToken,
                        meter);
                    WriteObject(result);
                }
                catch (FileOperationException ex)
                {
                    WriteError(ErrorRecords.From(ex));
                    if (running)
                    {
                        // The whole group refused (its keeper replaced, gone or shrunk): its result too, Status Error, so a
                        // pipeline that counts or filters the results has every group it asked for (a hostile review).
                        WriteObject(GroupDeduplicator.Refusal(resolved, IncludeUnreclaimable));
                    }
                }
                catch (OperationCanceledException) when (StopToken.IsCancellationRequested)
                {
                    return;
                }
            }
        }

        /// <inheritdoc/>
        protected override void BeginProcessing() => bars = new ProgressBars(this, "Invoke-BtrfsDedupe", 0x4444);

        /// <summary>
        /// The group with every range's path as a file system path (a relative one resolved against the current
        /// location), or null, with an error, for a group that names no file.
        /// </summary>
        private BtrfsDuplicateGroup? Resolved(BtrfsDuplicateGroup group)
        {
            if (group.Ranges is null || group.Ranges.Length < 2 || Array.Exists(group.Ranges, r => r is null || string.IsNullOrEmpty(r.Path) || r.Length <= 0 || r.Offset < 0))
            {
                WriteError(new ErrorRecord(
                    new PSArgumentException("Cannot deduplicate a group that does not have two or more ranges, each naming a file, an offset and a length (Find-BtrfsDuplicate makes groups). Nothing was changed for it."),
                    "InvalidDuplicateGroup",
                    ErrorCategory.InvalidArgument,
                    group));
                return null;
            }

            if (!warnedUnchecked && Array.Exists(group.Ranges, r => r.Inode == 0))
            {
                // Said, not silently passed over (a hostile review: a group read back from JSON without them deduplicated a
                // file put in place of the one searched). Once: a hand-made list of groups would say it for each.
                warnedUnchecked = true;
                WriteWarning("A group's ranges carry no Inode (and Device): made by hand, or read back without them. Whether each name still leads to the file that was searched cannot be checked; the kernel still compares the bytes before it shares them. Keep Find-BtrfsDuplicate's objects whole (Export-Clixml, ConvertTo-Json -Depth 4) to have them checked.");
            }

            // Find-BtrfsDuplicate's paths are absolute file system paths: used exactly as they are (a name
            // with a backslash is one name, never a way up). Only a relative one (a group made by hand) goes
            // through PowerShell's resolution, against the current location.
            var ranges = new DuplicateRange[group.Ranges.Length];
            for (int i = 0; i < ranges.Length; i++)
            {
                DuplicateRange r = group.Ranges[i];
                if (r.Path.Contains('\0', StringComparison.Ordinal))
                {
                    WriteError(ErrorRecords.NulInPath(r.Path)); // read up to the NUL, it would name another file (a hostile test)
                    return null;
                }

                string? path = System.IO.Path.IsPathRooted(r.Path) ? r.Path : PathBinding.UnresolvedFileSystemPath(this, r.Path);
                if (path is null)
                {
                    return null; // the helper wrote why
                }

                ranges[i] = new DuplicateRange { Path = path, Offset = r.Offset, Length = r.Length, Inode = r.Inode, Device = r.Device, Generation = r.Generation, FreesNothing = i > 0 && r.FreesNothing, SharedWithKeeperBytes = i > 0 ? Math.Clamp(r.SharedWithKeeperBytes, 0, r.Length) : 0 };
            }

            return new BtrfsDuplicateGroup { Ranges = ranges, Length = group.Length, AlreadySharedBytes = group.AlreadySharedBytes, ReclaimableBytes = group.ReclaimableBytes };
        }

        /// <inheritdoc/>
        protected override void EndProcessing()
        {
            bars?.Complete();
            if (ParameterSetName == GroupSet && WhatIfInEffect && groupsGiven > 0)
            {
                // Beside the "What if:" lines, where those go (the host), as Write-Host does: one information record
                // the host shows (tag PSHOST), so 6>$null silences it and *>&1 has it once. (Before: written to the
                // host and the information stream both, twice in a log.)
                string total = $"In all: about {SizeFormatter.Format(groupsFreeable)} ({groupsFreeable} bytes) of disk space would be freed.";
                WriteInformation(total, new[] { "PSHOST" });
            }
        }

        /// <inheritdoc/>
        protected override void ProcessFile(string path)
        {
            using OpenFile source = OpenFile.OpenRead(path);
            long? length = MyInvocation.BoundParameters.ContainsKey(nameof(Length)) ? Length : null;
            long destOffset = MyInvocation.BoundParameters.ContainsKey(nameof(DestinationOffset)) ? DestinationOffset : Offset;
            foreach (string dest in ResolveDestinations())
            {
                try
                {
                    DedupeOne(source, dest, length, destOffset);
                }
                catch (FileOperationException ex)
                {
                    WriteError(ErrorRecords.From(ex));
                }
            }
        }

        private void DedupeOne(OpenFile source, string dest, long? length, long destOffset)
        {
            // The same file is refused only at the same offset: two ranges of one file that do not overlap the kernel
            // deduplicates (as groups do; before, -DestinationOffset was refused as SourceIsDestination: a hostile review).
            if (destOffset == Offset)
            {
                Deduplicator.RefuseSameFile(source, dest);
            }

            // Opened and checked before the question (-WhatIf too): a missing file, a directory, a link, an empty file are
            // refused as the run would refuse them, and the preview's bytes are the run's (a hostile review). The run uses
            // the descriptor checked (a name renamed over during a confirmation prompt is not what the prompt described,
            // a review), and it is closed before the result is written: a command the result is piped to may replace
            // the file, which an open descriptor of ours would refuse.
            DedupeResult result;
            using (OpenFile destination = OpenFile.Open(dest, OpenOptions.NoFollow))
            {
                SwapTable swaps = SwapTable.Read();
                (long requested, _) = Deduplicator.Check(source, destination, Offset, length, destOffset, swaps);

                // Cost follows data: the holes of a sparse image are never read or compared.
                long bytes = Deduplicator.DataBytes(source, Offset, requested);
                if (!Preferences.ShouldProcess(this, dest, $"Share extents with '{source.Path}' where the bytes are equal (up to {SizeFormatter.Format(bytes)} of data compared by the kernel, holes skipped; data unchanged)"))
                {
                    return;
                }

                if (FileStatus.OfPath(dest, followLinks: false) is not FileStatus now || !now.SameInode(destination.Status))
                {
                    throw new FileOperationException(FileErrorKind.ChangedDuringCopy, 0, "statx", dest, $"Cannot deduplicate '{dest}': the name leads to another file now than the one checked and asked about (renamed over meanwhile). It was left as it is; run again.");
                }

                bars!.StartFile(dest, bytes);
                try
                {
                    result = Deduplicator.Dedupe(source, destination, Offset, length, destOffset, SwapTable.Read(), bars.Report, StopToken);
                }
                finally
                {
                    bars.EndFile();
                }
            }

            WriteObject(result);
            if (result.Error is FileOperationException error)
            {
                WriteError(ErrorRecords.From(error));
            }
        }

        private IEnumerable<string> ResolveDestinations()
        {
            // As -Path: patterns expanded, a name with wildcard characters written with backticks before them.
            foreach (string d in Destination)
            {
                foreach (string path in Resolve(d, literal: PipedPathAttribute.FromObject(d), "Check the pattern; write a name that itself contains '[', ']', '*' or '?' with a backtick before each of them (\"x`[1`]\" for x[1])."))
                {
                    yield return path;
                }
            }
        }
    }
}
