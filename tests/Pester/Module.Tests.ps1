BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot '../../Btrfs.psd1') -Force
    $cmdlets = (Get-Command -Module Btrfs).Name | ForEach-Object { @{ Name = $_ } }
}
BeforeAll { . (Join-Path $PSScriptRoot 'Fixture.ps1') }
AfterAll { $Fixture.Dispose() }

Describe 'The module as users load it' {
    It 'exports exactly the cmdlets its manifest lists, and nothing else' {
        $manifest = Import-PowerShellDataFile (Join-Path $RepoRoot 'Btrfs.psd1')
        (Get-Command -Module Btrfs).Name | Sort-Object | Should -Be ($manifest.CmdletsToExport | Sort-Object)
        (Get-Command -Module Btrfs -CommandType Function, Alias) | Should -BeNullOrEmpty
    }

    It 'gives <Name> help with a synopsis, a description and at least two examples' -ForEach $cmdlets {
        $help = Get-Help $Name -Full
        $help.Synopsis | Should -Not -BeNullOrEmpty
        $help.Synopsis | Should -Not -BeLike "$Name*"
        ($help.Description.Text -join '') | Should -Not -BeNullOrEmpty
        @($help.Examples.Example).Count | Should -BeGreaterOrEqual 2
    }
}

Describe 'NOCOW the way the VM-image workflow uses it' {
    It 'marks a directory, and a new image in it is NOCOW' {
        $dir = New-TestDirectory
        Set-NoCow -LiteralPath $dir
        Test-NoCow -LiteralPath $dir | Should -BeTrue
        $img = Join-Path $dir 'new.img'
        New-Item -ItemType File -Path $img | Out-Null
        Test-NoCow -LiteralPath $img | Should -BeTrue
    }

    It 'converts an existing image and Pester proves it' {
        $dir = New-TestDirectory
        $img = New-TestFile -Path (Join-Path $dir 'vm.img')
        $before = (Get-FileHash -LiteralPath $img.FullName).Hash
        $img | Test-NoCow | Should -BeFalse
        $img | ConvertTo-NoCow -Confirm:$false
        $img | Test-NoCow | Should -BeTrue
        (Get-FileHash -LiteralPath $img.FullName).Hash | Should -Be $before
    }

    It 'says why an image is not NOCOW' {
        $dir = New-TestDirectory
        $img = New-TestFile -Path (Join-Path $dir 'vm.img')
        $status = Test-NoCow -LiteralPath $img.FullName -Detailed
        $status.IsNoCow | Should -BeFalse
        $status.Reason | Should -Not -BeNullOrEmpty
    }
}

Describe 'Snapshots the way the backup variant of the workflow uses them' {
    It 'makes a NOCOW image area, takes a read-only snapshot, lists it and deletes it' {
        $dir = New-TestDirectory
        $area = New-BtrfsSubvolume -Path (Join-Path $dir 'vms') -NoCow
        $area.IsSnapshot | Should -BeFalse
        $img = New-TestFile -Path (Join-Path $area.Path 'vm.img')
        Test-NoCow -LiteralPath $img.FullName | Should -BeTrue

        $snap = $area | New-BtrfsSnapshot -Destination (Join-Path $dir 'vms-1') -ReadOnly
        $snap.IsReadOnly | Should -BeTrue
        $snap.ParentUuid | Should -Be $area.Uuid
        (Get-FileHash -LiteralPath (Join-Path $snap.Path 'vm.img')).Hash | Should -Be (Get-FileHash -LiteralPath $img.FullName).Hash

        $snapshots = Get-BtrfsSubvolume -LiteralPath $dir -Recurse | Where-Object IsSnapshot
        @($snapshots).Count | Should -Be 1
        $snapshots.SourcePath | Should -Be $area.Path

        $snapshots | Remove-BtrfsSubvolume -Wait -Confirm:$false
        Get-BtrfsSubvolume -LiteralPath $dir -Recurse | Where-Object IsSnapshot | Should -BeNullOrEmpty
        Test-Path -LiteralPath $snap.Path | Should -BeFalse
    }
}

Describe 'Errors as users meet them' {
    It 'reports a missing file as PathNotFound with the path as target, and goes on' {
        $dir = New-TestDirectory
        $img = New-TestFile -Path (Join-Path $dir 'vm.img')
        $out = Test-NoCow -LiteralPath (Join-Path $dir 'missing.img'), $img.FullName -ErrorVariable errors -ErrorAction SilentlyContinue
        @($out).Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -Be 'PathNotFound,Btrfs.Commands.TestNoCowCommand'
        $errors[0].TargetObject | Should -Be (Join-Path $dir 'missing.img')
    }

    It 'stops with -ErrorAction Stop, and Should -Throw matches the id the README shows' {
        $dir = New-TestDirectory
        $missing = Join-Path $dir 'missing.img'
        { Test-NoCow -LiteralPath $missing -ErrorAction Stop } | Should -Throw -ErrorId 'PathNotFound,*'
        { ConvertTo-NoCow -LiteralPath $missing -Confirm:$false -ErrorAction Stop } | Should -Throw -ErrorId 'PathNotFound,Btrfs.Commands.ConvertToNoCowCommand'
    }

    It 'previews a change with -WhatIf and changes nothing' {
        $dir = New-TestDirectory
        $img = New-TestFile -Path (Join-Path $dir 'vm.img')
        $before = (Get-Item -LiteralPath $img.FullName).LastWriteTimeUtc
        ConvertTo-NoCow -LiteralPath $img.FullName -WhatIf
        Test-NoCow -LiteralPath $img.FullName | Should -BeFalse
        (Get-Item -LiteralPath $img.FullName).LastWriteTimeUtc | Should -Be $before
    }
}

Describe 'Pipelines' {
    It 'measures what Get-ChildItem finds, and the reports bind onward' {
        $dir = New-TestDirectory
        New-TestFile -Path (Join-Path $dir 'a.img') | Out-Null
        New-TestFile -Path (Join-Path $dir 'b.img') -Seed 2 | Out-Null
        $reports = Get-ChildItem -LiteralPath $dir -Filter *.img | Measure-Fragmentation
        @($reports).Count | Should -Be 2
        ($reports | Test-NoCow -Detailed).Path | Should -Be $reports.Path
    }

    It 'exports numbers as numbers to CSV' {
        $dir = New-TestDirectory
        New-TestFile -Path (Join-Path $dir 'a.img') | Out-Null
        $csv = Join-Path $dir 'extents.csv'
        Get-BtrfsExtent -LiteralPath (Join-Path $dir 'a.img') | Export-Csv -LiteralPath $csv -NoTypeInformation
        $rows = Import-Csv -LiteralPath $csv
        @($rows).Count | Should -BeGreaterThan 0
        [long]$rows[0].Length | Should -BeGreaterThan 0
    }
}

Describe 'What a newcomer tries first' {
    It 'filters and selects by the headers the table shows' {
        $dir = New-TestDirectory
        $img = New-FragmentedFile -Path (Join-Path $dir 'vm.img')
        $table = Measure-Fragmentation -LiteralPath $img.FullName | Out-String -Width 80
        foreach ($header in 'Score', 'Extents', 'Name') { $table | Should -Match "\b$header\b" }
        $row = Measure-Fragmentation -LiteralPath $img.FullName | Select-Object Name, Extents, Score
        $row.Name | Should -Be 'vm.img'
        $row.Extents | Should -BeGreaterThan 8
        $row.Score | Should -BeGreaterThan 0
        @(Measure-Fragmentation -LiteralPath $img.FullName | Where-Object Score -gt 0).Count | Should -Be 1
    }

    It 'defragments by the threshold it measured with' {
        $dir = New-TestDirectory
        $img = New-FragmentedFile -Path (Join-Path $dir 'db.img')
        $hash = (Get-FileHash -LiteralPath $img.FullName).Hash
        $result = Measure-Fragmentation -LiteralPath $img.FullName -Threshold 1MB | Invoke-BtrfsDefrag -Confirm:$false
        $result.Reason | Should -BeLike '*below 1.00 MiB*'
        (Get-FileHash -LiteralPath $img.FullName).Hash | Should -Be $hash
    }

    It 'defragments a file once however many of its extents are piped in' {
        $dir = New-TestDirectory
        $img = New-FragmentedFile -Path (Join-Path $dir 'f.img')
        $extents = Get-BtrfsExtent -LiteralPath $img.FullName
        @($extents).Count | Should -BeGreaterThan 8
        $results = $extents | Invoke-BtrfsDefrag -Confirm:$false
        @($results).Count | Should -Be 1
        $results.ExtentsAfter | Should -BeLessThan $results.ExtentsBefore
    }
}
