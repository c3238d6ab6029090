from fittrack.cli import main

raise SystemExit(main())
