from cellnet3d.cli import main
raise SystemExit(main())
