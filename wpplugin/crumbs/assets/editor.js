/**
 * Crumbs editor integration, written against the wp.* globals so the plugin needs no build step:
 * - the "Crumbs event trigger" block (crumbs/event-trigger), which wraps inner blocks;
 * - a "Crumbs event" sidebar panel on core blocks such as Button and Image.
 * The event list comes from the plugin's REST route, which asks Crumbs server-side.
 */
( function ( wp, settings ) {
	'use strict';

	var el = wp.element.createElement;
	var Fragment = wp.element.Fragment;
	var useState = wp.element.useState;
	var useEffect = wp.element.useEffect;
	var __ = wp.i18n.__;
	var sprintf = wp.i18n.sprintf;
	var be = wp.blockEditor;
	var c = wp.components;

	var TRIGGER_LABELS = {
		click: __( 'Click', 'crumbs' ),
		view: __( 'Page view', 'crumbs' ),
		visible: __( 'Becomes visible', 'crumbs' ),
		submit: __( 'Form submit', 'crumbs' ),
	};
	var OTHER = '__other__';

	var definitionsPromise = null;
	function loadDefinitions() {
		if ( ! definitionsPromise ) {
			definitionsPromise = wp.apiFetch( { path: '/crumbs/v1/definitions' } ).then(
				function ( res ) {
					return { definitions: res.definitions || [], error: null };
				},
				function ( err ) {
					definitionsPromise = null;
					return {
						definitions: [],
						error: ( err && err.message ) || __( 'Could not load events from Crumbs.', 'crumbs' ),
					};
				}
			);
		}
		return definitionsPromise;
	}

	function useDefinitions() {
		var state = useState( { loading: true, definitions: [], error: null } );
		var value = state[ 0 ];
		var set = state[ 1 ];
		useEffect( function () {
			var live = true;
			loadDefinitions().then( function ( r ) {
				if ( live ) {
					set( { loading: false, definitions: r.definitions, error: r.error } );
				}
			} );
			return function () {
				live = false;
			};
		}, [] );
		return value;
	}

	/**
	 * Event code, trigger and properties controls, shared by the block and the core-block panel.
	 */
	function EventControls( props ) {
		var defs = useDefinitions();
		var known = defs.definitions.some( function ( d ) {
			return d.code === props.code;
		} );
		// "Other code…" chosen by the user; a saved code missing from the list also shows the text box.
		var typed = useState( false );
		var custom = typed[ 0 ] || ( ! defs.loading && props.code !== '' && ! known );
		var options = [ { value: '', label: __( '— No event —', 'crumbs' ) } ].concat(
			defs.definitions.map( function ( d ) {
				return { value: d.code, label: d.name ? sprintf( '%1$s (%2$s)', d.name, d.code ) : d.code };
			} ),
			[ { value: OTHER, label: __( 'Other code…', 'crumbs' ) } ]
		);
		var selected = defs.definitions.filter( function ( d ) {
			return d.code === props.code;
		} )[ 0 ];

		return el(
			Fragment,
			null,
			defs.loading && el( c.Spinner, null ),
			defs.error && el( c.Notice, { status: 'warning', isDismissible: false }, defs.error ),
			el( c.SelectControl, {
				label: __( 'Event', 'crumbs' ),
				value: custom ? OTHER : props.code,
				options: options,
				onChange: function ( v ) {
					if ( v === OTHER ) {
						typed[ 1 ]( true );
						return;
					}
					typed[ 1 ]( false );
					props.onChange( { code: v } );
				},
			} ),
			custom &&
				el( c.TextControl, {
					label: __( 'Event code', 'crumbs' ),
					help: __( 'Lowercase letters, digits, "_", "-" and ".". It must be defined in Crumbs.', 'crumbs' ),
					value: props.code,
					onChange: function ( v ) {
						props.onChange( { code: v.trim() } );
					},
				} ),
			selected && selected.description && el( 'p', { className: 'description' }, selected.description ),
			el( c.SelectControl, {
				label: __( 'Fire on', 'crumbs' ),
				value: props.on,
				options: settings.triggers.map( function ( t ) {
					return { value: t, label: TRIGGER_LABELS[ t ] || t };
				} ),
				onChange: function ( v ) {
					props.onChange( { on: v } );
				},
			} ),
			el( c.TextareaControl, {
				label: __( 'Extra properties', 'crumbs' ),
				help: __( 'One name=value per line, e.g. plan=pro', 'crumbs' ),
				value: props.properties,
				onChange: function ( v ) {
					props.onChange( { properties: v } );
				},
			} )
		);
	}

	wp.blocks.registerBlockType( 'crumbs/event-trigger', {
		edit: function ( props ) {
			var a = props.attributes;
			var blockProps = be.useBlockProps( { className: 'crumbs-event-trigger-editor' } );
			var label = a.code
				? sprintf(
						/* translators: 1: event code, 2: trigger such as Click */
						__( 'Crumbs event: %1$s (%2$s)', 'crumbs' ),
						a.code,
						TRIGGER_LABELS[ a.on ] || a.on
				  )
				: __( 'Crumbs event trigger: choose an event in the sidebar', 'crumbs' );
			return el(
				Fragment,
				null,
				el(
					be.InspectorControls,
					null,
					el(
						c.PanelBody,
						{ title: __( 'Crumbs event', 'crumbs' ), initialOpen: true },
						el( EventControls, {
							code: a.code,
							on: a.on,
							properties: a.properties,
							onChange: props.setAttributes,
						} )
					)
				),
				el(
					'div',
					blockProps,
					el( 'div', { className: 'crumbs-event-trigger-editor__label', style: { fontSize: '12px', opacity: 0.7 } }, label ),
					el( be.InnerBlocks, null )
				)
			);
		},
		save: function () {
			return el( be.InnerBlocks.Content, null );
		},
	} );

	var coreBlocks = settings.coreBlocks || [];

	wp.hooks.addFilter( 'blocks.registerBlockType', 'crumbs/event-attributes', function ( blockSettings, name ) {
		if ( coreBlocks.indexOf( name ) === -1 ) {
			return blockSettings;
		}
		blockSettings.attributes = Object.assign( {}, blockSettings.attributes, {
			crumbsEvent: { type: 'string', default: '' },
			crumbsOn: { type: 'string', default: 'click' },
			crumbsProperties: { type: 'string', default: '' },
		} );
		return blockSettings;
	} );

	var withPanel = wp.compose.createHigherOrderComponent( function ( BlockEdit ) {
		return function ( props ) {
			if ( coreBlocks.indexOf( props.name ) === -1 ) {
				return el( BlockEdit, props );
			}
			var a = props.attributes;
			return el(
				Fragment,
				null,
				el( BlockEdit, props ),
				props.isSelected &&
					el(
						be.InspectorControls,
						null,
						el(
							c.PanelBody,
							{ title: __( 'Crumbs event', 'crumbs' ), initialOpen: !! a.crumbsEvent },
							el( EventControls, {
								code: a.crumbsEvent || '',
								on: a.crumbsOn || 'click',
								properties: a.crumbsProperties || '',
								onChange: function ( change ) {
									var next = {};
									if ( 'code' in change ) {
										next.crumbsEvent = change.code;
									}
									if ( 'on' in change ) {
										next.crumbsOn = change.on;
									}
									if ( 'properties' in change ) {
										next.crumbsProperties = change.properties;
									}
									props.setAttributes( next );
								},
							} )
						)
					)
			);
		};
	}, 'withCrumbsEventPanel' );

	wp.hooks.addFilter( 'editor.BlockEdit', 'crumbs/event-panel', withPanel );
} )( window.wp, window.crumbsEditorSettings || { coreBlocks: [], triggers: [ 'click', 'view', 'visible', 'submit' ] } );
