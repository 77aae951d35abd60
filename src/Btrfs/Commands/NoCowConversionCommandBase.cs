namespace Btrfs.Commands
{
    using System.Management.Automation;
    using Btrfs.Core;
    using Btrfs.Kernel;

    /// <summary>The shared body of ConvertTo-NoCow and ConvertFrom-NoCow: they differ only in direction.</summary>
    public abstract class NoCowConversionCommandBase : RecursiveFileCmdletBase
    {
        private readonly RewriteSession session = new();
        private ProgressBars? bars;



        /// <summary>Convert a file with more than one hard link (only this name gets the new file).</summary>
        [Parameter]
        public SwitchParameter Force { get; set; }

        /// <summary>
        /// Where the kernel cannot prove that no other process has the file open (no write lease: you
        /// are not the owner, or leases are disabled), go on on the /proc scan alone. A file found in use
        /// is still refused.
        /// </summary>
        [Parameter]
        public SwitchParameter AssumeNotInUse { get; set; }

        /// <summary>Emit the Test-NoCow -Detailed object of each file afterwards.</summary>
        [Parameter]
        public SwitchParameter PassThru { get; set; }

        /// <summary>True for ConvertTo-NoCow.</summary>
        private protected abstract bool ToNoCow { get; }

        /// <summary>ConvertTo-NoCow: drop compression instead of refusing a compressed file.</summary>
        private protected virtual bool DropCompressionRequested => false;

        private string State => ToNoCow ? "NOCOW" : "COW";

        /// <inheritdoc/>
        protected override void BeginProcessing() => bars = new ProgressBars(this, ToNoCow ? "ConvertTo-NoCow" : "ConvertFrom-NoCow", ToNoCow ? 0x4E43 : 0x4346);

        /// <inheritdoc/>
        protected override void EndProcessing() => bars?.Complete();

        /// <inheritdoc/>
        protected override void ProcessFile(string path)
        {
            if (!Recursing)
            {
                ConvertOne(path);
                return;
            }

            ForEachInTree(path, entry =>
            {
                if (entry.Kind == WalkEntryKind.Directory)
                {
                    MarkDirectory(entry);
                }
                else
                {
                    ConvertOne(entry.Path, entry.Location);
                }
            });
        }

        private void MarkDirectory(WalkEntry entry)
        {
            string path = entry.Path;
            using OpenFile dir = NoCowAttribute.OpenForChange(entry, out InodeFlags flags);
            if (NoCowAttribute.Check(dir, flags, ToNoCow, skipNonEmpty: false) == NoCowChange.Changed
                && ShouldProcess(path, ToNoCow ? "Set the NOCOW attribute on the directory, so new files in it are NOCOW" : "Clear the NOCOW attribute of the directory, so new files in it are COW"))
            {
                NoCowAttribute.Apply(dir, flags, ToNoCow);
                WriteVerbose($"Directory '{path}' is now {State}.");
            }
        }

        private void ConvertOne(string path, FileLocation? walked = null)
        {
            if (walked is null)
            {
                ThrowIfDirectoryWithoutRecurse(path, Recursing, "convert", "mark it and convert the files below it, or use Set-NoCow to mark only the directory");
            }

            var options = new NoCowConversionOptions
            {
                AllowHardLinks = Force.IsPresent,
                AssumeNotInUse = AssumeNotInUse.IsPresent,
                DropCompression = DropCompressionRequested,
            };
            using NoCowConversion plan = walked is { } location ? NoCowConversion.Prepare(location, ToNoCow, options) : NoCowConversion.Prepare(path, ToNoCow, options);
            if (plan.AlreadyInState)
            {
                WriteVerbose($"'{path}' is already {State}; skipped (not rewritten).");
                EmitStatus(plan);
                return;
            }

            foreach (string warning in plan.Warnings)
            {
                WriteWarning(warning);
            }

            string action = $"Rewrite {SizeFormatter.Format(plan.DataBytes)} of data (file size {SizeFormatter.Format(plan.Size)}) into a new {State} file and replace the original; needs {SizeFormatter.Format(plan.DataBytes)} of the {SizeFormatter.Format(plan.AvailableBytes)} free";
            if (!ShouldProcess(path, action))
            {
                return;
            }

            bars!.StartFile(path, plan.DataBytes);
            try
            {
                plan.Run(session, bars.Report, StopToken, WriteWarning);
            }
            finally
            {
                bars.EndFile();
            }

            WriteVerbose($"'{path}' is now {State}: {SizeFormatter.Format(plan.DataBytes)} rewritten.");
            EmitStatus(plan);
        }

        private void EmitStatus(NoCowConversion plan)
        {
            if (PassThru.IsPresent)
            {
                WriteObject(plan.Inspect());
            }
        }
    }
}
