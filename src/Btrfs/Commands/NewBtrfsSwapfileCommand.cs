namespace Btrfs.Commands
{
    using System.Management.Automation;
    using Btrfs.Core;
    using Btrfs.Kernel;

    /// <summary>New-BtrfsSwapfile: a working swapfile in one step, made in the order btrfs needs.</summary>
    [Cmdlet(VerbsCommon.New, "BtrfsSwapfile", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium, HelpUri = HelpLinks.Pages + "New-BtrfsSwapfile.md")]
    [OutputType(typeof(SwapfileStatus))]
    public sealed class NewBtrfsSwapfileCommand : PSCmdlet
    {
        /// <summary>The swapfile to create, used as given (no wildcards: the name does not exist yet); -LiteralPath is the same parameter.</summary>
        [Parameter(Mandatory = true, Position = 0)]
        [Alias("LiteralPath", "LP")]
        [ValidateNotNullOrEmpty]
        public string Path { get; set; } = string.Empty;

        /// <summary>Its size in bytes (2GB works); rounded down to whole pages.</summary>
        [Parameter(Mandatory = true, Position = 1)]
        [ValidateRange(40960, long.MaxValue)]
        public long Size { get; set; }

        /// <summary>Switch it on (swapon) once it is made.</summary>
        [Parameter]
        public SwitchParameter Activate { get; set; }

        /// <summary>With -Activate: the swap priority (0 to 32767; higher is used first).</summary>
        [Parameter]
        [ValidateRange(0, 32767)]
        public int Priority { get; set; }

        /// <summary>The swap area's label (up to 16 bytes in UTF-8: 16 ASCII characters, fewer others).</summary>
        [Parameter]
        [ValidateLength(1, 16)]
        public string? Label { get; set; }

        /// <summary>Replace an existing file (never an active swapfile, never a file in use).</summary>
        [Parameter]
        public SwitchParameter Force { get; set; }

        /// <summary>With -Force: where no write lease can prove that nobody has the file open, rely on the /proc scan alone.</summary>
        [Parameter]
        public SwitchParameter AssumeNotInUse { get; set; }

        /// <inheritdoc/>
        protected override void ProcessRecord()
        {
            if (PathBinding.UnresolvedFileSystemPath(this, Path) is not string path)
            {
                return; // another provider's path, a missing drive, an ambiguous backslash, a NUL: the error is written
            }

            var options = new SwapfileOptions { Force = Force.IsPresent, Label = Label, AssumeNotInUse = AssumeNotInUse.IsPresent, Notice = WriteWarning };
            try
            {
                long bytes = SwapfileCreator.Check(path, Size, options);
                string activatePath = Activate.IsPresent ? SwapfileCreator.CheckActivation(path) : path;
                if (bytes != Size)
                {
                    WriteVerbose($"{Size} bytes rounded down to whole pages: {bytes}.");
                }

                string action = $"Create a {SizeFormatter.Format(bytes)} swapfile (empty, NOCOW where btrfs, preallocated, mode 0600, swap header)" + (Activate.IsPresent ? " and activate it" : string.Empty);
                if (Force.IsPresent && Btrfs.Kernel.FileStatus.OfPath(path, followLinks: false) is { IsRegular: true } existing)
                {
                    // What -Force would replace, said (before: a preview of replacing a file of data read as a plain creation. A hostile test).
                    action += $", replacing the existing file there ({SizeFormatter.Format(existing.Size)} long, {SizeFormatter.Format(existing.AllocatedBytes)} on disk): its data is gone from this name"
                        + (existing.Links > 1 ? $" (its {existing.Links - 1} other hard link(s) keep it)" : string.Empty);
                }

                if (!Preferences.ShouldProcess(this, path, action))
                {
                    return;
                }

                // Activating changes what the kernel does with memory: ask (ShouldContinue), unless told not to (-Confirm:$false).
                if (Activate.IsPresent && !Preferences.ConfirmSwitchedOff(this) && !Preferences.ShouldContinue(this, path, $"Activate '{path}' as swap now?", "Activate swap", "-Confirm:$false (or leave out -Activate)"))
                {
                    Activate = false;
                }

                SwapfileStatus status = SwapfileCreator.Create(path, Size, options);
                bool activationFailed = false;
                if (Activate.IsPresent)
                {
                    try
                    {
                        SwapfileCreator.Activate(activatePath, MyInvocation.BoundParameters.ContainsKey(nameof(Priority)) ? Priority : null);
                        status = SwapfileInspector.Inspect(path);
                    }
                    catch (FileOperationException ex)
                    {
                        WriteError(ErrorRecords.From(ex)); // the file exists and is described below
                        activationFailed = true;
                    }
                }

                if (!status.IsValid && !status.IsActive && !activationFailed)
                {
                    // Made as asked, yet not a swapfile Test-BtrfsSwapfile passes (made by a user other than root: it is that
                    // user's). Said, not only in the object's Reason (a hostile test: nothing told the caller).
                    WriteWarning($"'{path}' was created, but swapon should not take it as it is: {status.ReasonText}.");
                }

                WriteObject(status);
            }
            catch (FileOperationException ex)
            {
                WriteError(ErrorRecords.From(ex));
            }
        }
    }
}
